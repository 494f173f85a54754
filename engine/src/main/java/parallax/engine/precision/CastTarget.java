package parallax.engine.precision;

import java.util.ArrayList;
import java.util.List;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.numerics.BlockFormat;
import parallax.engine.numerics.FloatFormat;

/**
 * What a tensor is cast to in {@code %precision cast}: a format with a value per element
 * (FP16, BF16, the FP8s), optionally scaled first, or a block-scaled format (MX, NVFP4)
 * with its block size, whose scales are part of the format.
 */
public sealed interface CastTarget {

    /** The name shown in tables and charts. */
    String label();

    /** Every element stored on its own in {@code format}. */
    record Elementwise(FloatFormat format) implements CastTarget {
        @Override public String label() { return format.label(); }
    }

    /** Blocks of {@code block} elements along each row sharing a scale. */
    record Blocks(BlockFormat format, int block) implements CastTarget {
        public Blocks {
            if (block < 1) throw new UserError("--block must be at least 1, got " + block);
            if (block > 4096) throw new UserError("--block " + block + " is larger than any block format uses (at most 4096)");
        }

        @Override public String label() {
            return block == format.blockSize() ? format.label() : format.label() + ", blocks of " + block;
        }
    }

    static List<CastTarget> of(FloatFormat... formats) {
        List<CastTarget> out = new ArrayList<>();
        for (FloatFormat f : formats) out.add(new Elementwise(f));
        return out;
    }

    static List<CastTarget> of(List<FloatFormat> formats) {
        return of(formats.toArray(FloatFormat[]::new));
    }

    /**
     * A comma-separated list such as "bf16,e4m3,mxfp4,nvfp4". {@code block} (may be null)
     * replaces every block format's own block size.
     */
    static List<CastTarget> parse(String csv, Integer block) {
        List<CastTarget> out = new ArrayList<>();
        for (String part : csv.split(",")) {
            if (part.isBlank()) continue;
            CastTarget t = BlockFormat.find(part)
                    .<CastTarget>map(b -> new Blocks(b, block == null ? b.blockSize() : block))
                    .orElseGet(() -> new Elementwise(parseFloat(part)));
            if (!out.contains(t)) out.add(t);
        }
        if (out.isEmpty()) throw new UserError("no number format given. Known: " + known() + ".");
        return out;
    }

    private static FloatFormat parseFloat(String name) {
        try {
            return FloatFormat.parse(name);
        } catch (UserError e) {
            List<String> all = new ArrayList<>();
            for (FloatFormat f : FloatFormat.values()) all.addAll(f.names());
            all.addAll(BlockFormat.allNames());
            throw new UserError("unknown number format '" + name.trim() + "'." + DidYouMean.hint(name.trim().toLowerCase(java.util.Locale.ROOT), all)
                    + " Known: " + known() + ".");
        }
    }

    private static String known() {
        List<String> s = new ArrayList<>();
        for (FloatFormat f : FloatFormat.values()) s.add(f.shortName());
        s.addAll(BlockFormat.shortNames());
        return String.join(", ", s);
    }
}
