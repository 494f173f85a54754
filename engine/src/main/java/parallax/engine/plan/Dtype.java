package parallax.engine.plan;

/** The compute dtype of training: sets bytes per weight/gradient and the tensor-core rate. */
public enum Dtype {
    FP32("fp32"), BF16("bf16"), FP16("fp16"), FP8("fp8");

    private final String label;

    Dtype(String label) { this.label = label; }

    public String label() { return label; }

    /** Bytes of one stored activation element (fp8 training keeps activations in bf16). */
    public int activationBytes() { return this == FP32 ? 4 : 2; }
}
