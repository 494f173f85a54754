package parallax.engine.parallel;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/**
 * Reads the part of a DeepSpeed JSON config (deepspeed.ai/docs/config-json) that maps
 * onto our engine, so users can try their real configs. Supported: train_batch_size,
 * train_micro_batch_size_per_gpu, gradient_accumulation_steps, zero_optimization.stage,
 * bf16.enabled, fp16.enabled (dynamic loss scaling: loss_scale 0), activation_checkpointing
 * (present = recompute every block), optimizer.type AdamW/SGD with params.lr, and
 * steps_per_print / wall_clock_breakdown (no effect here). Any other key is named in the
 * error, never ignored silently.
 */
public final class DeepSpeedConfig {

    private static final Set<String> TOP = Set.of("train_batch_size", "train_micro_batch_size_per_gpu",
            "gradient_accumulation_steps", "zero_optimization", "bf16", "fp16", "activation_checkpointing",
            "optimizer", "steps_per_print", "wall_clock_breakdown");

    private DeepSpeedConfig() {}

    /** Applies the config text to {@code base}; the DP size comes from the layout. */
    public static TrainSpec apply(String json, TrainSpec base) {
        JsonObject o;
        try {
            o = JsonParser.parseString(json).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new UserError("--config is not a JSON object: " + e.getMessage());
        }
        List<String> unsupported = new ArrayList<>();
        for (String k : o.keySet()) if (!TOP.contains(k)) unsupported.add(k);
        TrainSpec s = base;
        int dp = s.dp();
        Integer micro = intOrNull(o, "train_micro_batch_size_per_gpu");
        Integer accum = intOrNull(o, "gradient_accumulation_steps");
        Integer total = intOrNull(o, "train_batch_size");
        int m = accum != null ? accum : 1;
        if (micro != null) {
            s = s.withBatch(micro * m * dp).withMicroBatches(m, s.schedule());
        } else if (total != null) {
            if (total % (dp * m) != 0) throw new UserError("train_batch_size " + total + " is not divisible by dp x gradient_accumulation_steps = " + dp * m);
            s = s.withBatch(total).withMicroBatches(m, s.schedule());
        } else if (accum != null) {
            s = s.withMicroBatches(m, s.schedule());
        }
        if (total != null && micro != null && total != micro * m * dp)
            throw new UserError("train_batch_size " + total + " != micro " + micro + " x accumulation " + m + " x dp " + dp);
        if (o.has("zero_optimization")) {
            JsonObject z = o.getAsJsonObject("zero_optimization");
            for (String k : z.keySet()) if (!k.equals("stage")) unsupported.add("zero_optimization." + k);
            if (z.has("stage")) s = s.withZero(z.get("stage").getAsInt());
        }
        boolean bf16 = enabled(o, "bf16", unsupported, Set.of("enabled"));
        boolean fp16 = enabled(o, "fp16", unsupported, Set.of("enabled", "loss_scale", "initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale"));
        if (o.has("fp16") && o.getAsJsonObject("fp16").has("loss_scale") && o.getAsJsonObject("fp16").get("loss_scale").getAsDouble() != 0)
            unsupported.add("fp16.loss_scale (static; only 0 = dynamic is supported)");
        for (String k : new String[] {"initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale"})
            if (o.has("fp16") && o.getAsJsonObject("fp16").has(k)) unsupported.add("fp16." + k);
        if (bf16 && fp16) throw new UserError("bf16.enabled and fp16.enabled are both true; pick one");
        if (bf16) s = s.withPrecision(DType.BF16);
        if (fp16) s = s.withPrecision(DType.F16);
        if (o.has("activation_checkpointing")) {
            JsonObject a = o.getAsJsonObject("activation_checkpointing");
            for (String k : a.keySet()) {
                JsonElement v = a.get(k);
                boolean harmless = v.isJsonPrimitive() && v.getAsJsonPrimitive().isBoolean() && !v.getAsBoolean();
                if (!harmless && !k.equals("number_checkpoints")) unsupported.add("activation_checkpointing." + k);
            }
            s = s.withCheckpoint(1);
        }
        if (o.has("optimizer")) {
            JsonObject opt = o.getAsJsonObject("optimizer");
            String type = opt.has("type") ? opt.get("type").getAsString().toLowerCase(Locale.ROOT) : "adamw";
            if (!type.equals("adamw") && !type.equals("sgd")) unsupported.add("optimizer.type " + opt.get("type").getAsString());
            double lr = s.lr();
            if (opt.has("params")) {
                JsonObject p = opt.getAsJsonObject("params");
                for (String k : p.keySet()) if (!k.equals("lr")) unsupported.add("optimizer.params." + k);
                if (p.has("lr")) lr = p.get("lr").getAsDouble();
            }
            s = s.withOptimizer(type, lr);
        }
        if (!unsupported.isEmpty())
            throw new UserError("--config: unsupported DeepSpeed key(s): " + String.join(", ", unsupported));
        return s;
    }

    private static Integer intOrNull(JsonObject o, String k) {
        return o.has(k) ? o.get(k).getAsInt() : null;
    }

    private static boolean enabled(JsonObject o, String k, List<String> unsupported, Set<String> known) {
        if (!o.has(k)) return false;
        JsonObject x = o.getAsJsonObject(k);
        for (String key : x.keySet()) if (!known.contains(key)) unsupported.add(k + "." + key);
        return x.has("enabled") && x.get("enabled").getAsBoolean();
    }
}
