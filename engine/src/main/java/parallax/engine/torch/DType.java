package parallax.engine.torch;

import java.util.Locale;
import org.bytedeco.pytorch.global.torch;

/** The floating-point types a training run computes in. */
public enum DType {
    FP32(torch.ScalarType.Float, 4),
    BF16(torch.ScalarType.BFloat16, 2),
    FP16(torch.ScalarType.Half, 2);

    private final torch.ScalarType scalarType;
    private final int bytes;

    DType(torch.ScalarType scalarType, int bytes) {
        this.scalarType = scalarType;
        this.bytes = bytes;
    }

    public torch.ScalarType scalarType() { return scalarType; }

    public int bytes() { return bytes; }

    public String label() { return name().toLowerCase(Locale.ROOT); }

    /** fp32, bf16, fp16 (case-insensitive); null when unknown. */
    public static DType parse(String s) {
        for (DType d : values()) if (d.label().equalsIgnoreCase(s)) return d;
        return null;
    }
}
