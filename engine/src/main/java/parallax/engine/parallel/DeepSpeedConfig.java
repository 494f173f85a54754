package parallax.engine.parallel;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import parallax.engine.JsonText;
import parallax.engine.UserError;
import parallax.engine.model.Optimizer;
import parallax.engine.numerics.DType;

/**
 * Reads the part of a DeepSpeed JSON config (deepspeed.ai/docs/config-json) that maps
 * onto our engine, so users can try their real configs. Supported: train_batch_size,
 * train_micro_batch_size_per_gpu, gradient_accumulation_steps, zero_optimization.stage,
 * bf16.enabled, fp16.enabled (dynamic loss scaling: loss_scale 0), activation_checkpointing
 * (present = recompute every block), optimizer.type AdamW/SGD with params.lr (and AdamW's
 * betas, eps and weight_decay when they equal the engine's), gradient_clipping 0, and
 * steps_per_print / wall_clock_breakdown (no effect here). Any other key is named in the
 * error, never ignored silently. The config's values win over the run's flags.
 *
 * <p>{@code "auto"}, as Hugging Face's configs write almost everywhere, is resolved the way
 * the HF Trainer's DeepSpeed integration does (transformers.integrations.deepspeed,
 * HfTrainerDeepSpeedConfig.trainer_config_process): from the run's own settings. Ours are
 * the flags of {@code %parallel}: the micro-batch per GPU is --batch / (dp x micro-batches),
 * the accumulation --micro-batches, the global batch --batch, bf16/fp16.enabled --precision,
 * the optimizer's lr --lr and its other parameters the engine's own. Every key filled so is
 * listed in {@link Applied#filled()} for the report.
 */
public final class DeepSpeedConfig {

    private static final Set<String> TOP = Set.of("train_batch_size", "train_micro_batch_size_per_gpu",
            "gradient_accumulation_steps", "zero_optimization", "bf16", "fp16", "activation_checkpointing",
            "optimizer", "gradient_clipping", "steps_per_print", "wall_clock_breakdown");
    private static final String AUTO = "auto";

    private DeepSpeedConfig() {}

    /** One {@code "auto"} key and the run's value it took, with where that value came from. */
    public record Filled(String key, Object value, String from) {}

    /** The run the config describes, and the {@code "auto"} keys filled from the run, in the order resolved. */
    public record Applied(TrainSpec spec, List<Filled> filled) {

        /** key -> value, for a report's data. */
        public Map<String, Object> filledValues() {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Filled f : filled) m.put(f.key(), f.value());
            return m;
        }

        /** One sentence naming each filled key and its value; empty when nothing was "auto". */
        public String note() {
            if (filled.isEmpty()) return "";
            return "DeepSpeed config: \"auto\" filled from this run: " + filled.stream()
                    .map(f -> "`" + f.key() + "` = " + show(f.value()) + " (" + f.from() + ")")
                    .collect(Collectors.joining(", ")) + ".";
        }
    }

    /** Applies the config text to {@code run}; the DP size comes from the layout. */
    public static TrainSpec apply(String json, TrainSpec run) {
        return resolve(json, run).spec();
    }

    /** Applies the config text to {@code run}, and says which "auto" keys took which of its values. */
    public static Applied resolve(String json, TrainSpec run) {
        JsonObject o = parse(json);
        List<String> unsupported = new ArrayList<>();
        List<Filled> filled = new ArrayList<>();
        for (String k : o.keySet()) if (!TOP.contains(k)) unsupported.add(k);
        TrainSpec s = batch(o, run, filled);
        s = zero(o, s, unsupported);
        s = precision(o, s, filled, unsupported);
        if (o.has("activation_checkpointing")) {
            JsonObject a = object(o, "activation_checkpointing", "{\"partition_activations\": false}");
            for (String k : a.keySet()) {
                JsonElement v = a.get(k);
                boolean harmless = v.isJsonPrimitive() && v.getAsJsonPrimitive().isBoolean() && !v.getAsBoolean();
                if (!harmless && !k.equals("number_checkpoints")) unsupported.add("activation_checkpointing." + k);
            }
            s = s.withCheckpoint(1);
        }
        s = optimizer(o, s, filled, unsupported);
        if (o.has("gradient_clipping")) {
            JsonElement g = o.get("gradient_clipping");
            if (isAuto(g)) filled.add(new Filled("gradient_clipping", 0.0, "this engine does not clip gradients"));
            else if (number(g, "gradient_clipping", "a number") != 0) unsupported.add("gradient_clipping " + g + " (this engine does not clip gradients: write 0 or \"auto\")");
        }
        if (o.has("steps_per_print")) whole(o.get("steps_per_print"), "steps_per_print");
        if (o.has("wall_clock_breakdown") && !isBoolean(o.get("wall_clock_breakdown")))
            throw new UserError("--config: wall_clock_breakdown must be true or false, not " + o.get("wall_clock_breakdown"));
        if (!unsupported.isEmpty())
            throw new UserError("--config: unsupported DeepSpeed key(s): " + String.join(", ", unsupported));
        return new Applied(s, List.copyOf(filled));
    }

    private static JsonObject parse(String json) {
        JsonElement e = JsonText.parse(json, "--config");
        if (!e.isJsonObject()) throw new UserError("--config must hold one JSON object {...}, not " + kind(e));
        return e.getAsJsonObject();
    }

    /**
     * The batch triple. "auto" takes the run's value; then DeepSpeed's own rules
     * (runtime/config.py, _set_batch_related_parameters) derive a missing one from the
     * other two, and train_batch_size must equal micro x accumulation x dp.
     */
    private static TrainSpec batch(JsonObject o, TrainSpec run, List<Filled> filled) {
        int dp = run.dp();
        Long total = batchValue(o, "train_batch_size");
        Long micro = batchValue(o, "train_micro_batch_size_per_gpu");
        Long accum = batchValue(o, "gradient_accumulation_steps");
        if (total == null && micro == null && accum == null) return run;
        if (total != null && total == 0) {
            total = (long) run.batch();
            filled.add(new Filled("train_batch_size", total, "--batch"));
        }
        if (accum != null && accum == 0) {
            accum = (long) run.microBatches();
            filled.add(new Filled("gradient_accumulation_steps", accum, "--micro-batches"));
        }
        if (micro != null && micro == 0) {
            long split = (long) dp * run.microBatches();
            if (run.batch() % split != 0)
                throw new UserError("--config: train_micro_batch_size_per_gpu \"auto\" needs the run's batch " + run.batch()
                        + " to divide into dp " + dp + " x " + run.microBatches() + " micro-batches");
            micro = run.batch() / split;
            filled.add(new Filled("train_micro_batch_size_per_gpu", micro,
                    "--batch " + run.batch() + " / (dp " + dp + " x " + run.microBatches() + " micro-batches)"));
        }
        // Neither size given: the run's global batch stands (DeepSpeed itself would need one of them).
        if (total == null && micro == null) total = (long) run.batch();
        if (total != null && micro != null && accum == null) {
            accum = exactly(total, micro * dp, "train_batch_size " + total + " is not divisible by train_micro_batch_size_per_gpu "
                    + micro + " x dp " + dp + " = " + micro * dp);
        } else if (total != null && accum != null && micro == null) {
            micro = exactly(total, accum * dp, "train_batch_size " + total + " is not divisible by gradient_accumulation_steps "
                    + accum + " x dp " + dp + " = " + accum * dp);
        } else if (total == null) {
            if (accum == null) accum = 1L;
            total = micro * accum * dp;
        } else if (micro == null) {
            accum = 1L;
            micro = exactly(total, (long) dp, "train_batch_size " + total + " is not divisible by dp " + dp);
        }
        if (total != micro * accum * dp)
            throw new UserError("--config: train_batch_size " + total + " != train_micro_batch_size_per_gpu " + micro
                    + " x gradient_accumulation_steps " + accum + " x dp " + dp + " = " + micro * accum * dp);
        if (total > Integer.MAX_VALUE) throw new UserError("--config: train_batch_size " + total + " is too large");
        return run.withBatch((int) (long) total).withMicroBatches((int) (long) accum, run.schedule());
    }

    /** A positive whole number; 0 stands for "auto"; null when the key is absent. */
    private static Long batchValue(JsonObject o, String key) {
        if (!o.has(key)) return null;
        JsonElement e = o.get(key);
        if (isAuto(e)) return 0L;
        long v = whole(e, key);
        if (v > Integer.MAX_VALUE) throw new UserError("--config: " + key + " " + v + " is too large");
        return v;
    }

    private static long exactly(long a, long b, String otherwise) {
        if (a % b != 0) throw new UserError("--config: " + otherwise);
        return a / b;
    }

    private static TrainSpec zero(JsonObject o, TrainSpec s, List<String> unsupported) {
        if (!o.has("zero_optimization")) return s;
        JsonElement z = o.get("zero_optimization");
        // DeepSpeed still reads a bare boolean as its old form: true is stage 1, false stage 0
        // (runtime/zero/config.py, read_zero_config_deprecated). A number is not accepted there
        // (it is unpacked as keyword arguments), so neither is it here.
        if (isBoolean(z)) return s.withZero(z.getAsBoolean() ? 1 : 0);
        if (!z.isJsonObject())
            throw new UserError("--config: zero_optimization must be an object such as {\"stage\": "
                    + (isWhole(z) && z.getAsLong() >= 0 && z.getAsLong() <= 3 ? z : "2") + "}, not " + z);
        JsonObject zo = z.getAsJsonObject();
        for (String k : zo.keySet()) if (!k.equals("stage")) unsupported.add("zero_optimization." + k);
        if (!zo.has("stage")) return s;
        JsonElement st = zo.get("stage");
        if (!isWhole(st) || st.getAsLong() < 0 || st.getAsLong() > 3)
            throw new UserError("--config: zero_optimization.stage must be 0, 1, 2 or 3, not " + st);
        return s.withZero(st.getAsInt());
    }

    /**
     * DeepSpeed trains in fp16 when fp16.enabled, in bf16 when bf16.enabled, else in fp32;
     * without either section the run's --precision stands.
     */
    private static TrainSpec precision(JsonObject o, TrainSpec s, List<Filled> filled, List<String> unsupported) {
        if (!o.has("bf16") && !o.has("fp16")) return s;
        boolean bf16 = enabled(o, "bf16", DType.BF16, s, filled, unsupported, Set.of("enabled"));
        boolean fp16 = enabled(o, "fp16", DType.F16, s, filled, unsupported, Set.of("enabled", "loss_scale"));
        if (o.has("fp16")) {
            JsonElement ls = o.getAsJsonObject("fp16").get("loss_scale");
            if (ls != null && number(ls, "fp16.loss_scale", "a number (0 = dynamic)") != 0)
                unsupported.add("fp16.loss_scale " + ls + " (static; only 0 = dynamic is supported)");
        }
        if (bf16 && fp16) throw new UserError("--config: bf16.enabled and fp16.enabled are both true; pick one");
        return s.withPrecision(bf16 ? DType.BF16 : fp16 ? DType.F16 : DType.F32);
    }

    private static boolean enabled(JsonObject o, String k, DType type, TrainSpec run, List<Filled> filled,
                                   List<String> unsupported, Set<String> known) {
        if (!o.has(k)) return false;
        // DeepSpeed reads "<k>": {"enabled": ...}; a bare true fails there (it calls .get on a
        // bool), so it is one line here rather than a guess.
        JsonObject x = object(o, k, "{\"enabled\": true}");
        for (String key : x.keySet()) if (!known.contains(key)) unsupported.add(k + "." + key);
        if (!x.has("enabled")) return false;
        JsonElement e = x.get("enabled");
        if (isAuto(e)) {
            boolean on = run.precision() == type;
            filled.add(new Filled(k + ".enabled", on, "--precision " + run.precision().label()));
            return on;
        }
        if (!isBoolean(e)) throw new UserError("--config: " + k + ".enabled must be true, false or \"auto\", not " + e);
        return e.getAsBoolean();
    }

    private static TrainSpec optimizer(JsonObject o, TrainSpec s, List<Filled> filled, List<String> unsupported) {
        if (!o.has("optimizer")) return s;
        JsonObject opt = object(o, "optimizer", "{\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}");
        String type = s.optimizer();
        if (opt.has("type")) {
            JsonElement t = opt.get("type");
            if (!t.isJsonPrimitive() || !t.getAsJsonPrimitive().isString())
                throw new UserError("--config: optimizer.type must be a name such as \"AdamW\", not " + t);
            type = t.getAsString().toLowerCase(Locale.ROOT);
            if (!type.equals("adamw") && !type.equals("sgd")) unsupported.add("optimizer.type " + t.getAsString());
        }
        for (String k : opt.keySet()) if (!k.equals("type") && !k.equals("params")) unsupported.add("optimizer." + k);
        double lr = s.lr();
        if (opt.has("params")) {
            JsonObject p = object(opt, "params", "{\"lr\": 1e-3}");
            for (String k : p.keySet()) {
                JsonElement v = p.get(k);
                String key = "optimizer.params." + k;
                if (k.equals("lr")) {
                    if (isAuto(v)) {
                        filled.add(new Filled(key, s.lr(), "--lr"));
                    } else {
                        lr = number(v, key, "a positive number or \"auto\"");
                        if (!(lr > 0) || Double.isInfinite(lr)) throw new UserError("--config: " + key + " must be a positive number, not " + v);
                    }
                } else if (type.equals("adamw") && ADAMW.containsKey(k)) {
                    Object ours = ADAMW.get(k);
                    if (isAuto(v)) filled.add(new Filled(key, ours, "this engine's AdamW"));
                    else if (!same(v, ours)) unsupported.add(key + " " + v + " (this engine's AdamW uses " + show(ours) + ")");
                } else {
                    unsupported.add(key);
                }
            }
        }
        return s.withOptimizer(type, lr);
    }

    private static final Map<String, Object> ADAMW = Map.of(
            "betas", List.of(Optimizer.ADAMW_BETA1, Optimizer.ADAMW_BETA2),
            "eps", Optimizer.ADAMW_EPS,
            "weight_decay", Optimizer.ADAMW_WEIGHT_DECAY);

    private static boolean same(JsonElement v, Object ours) {
        if (ours instanceof List<?> list) {
            if (!v.isJsonArray() || v.getAsJsonArray().size() != list.size()) return false;
            JsonArray a = v.getAsJsonArray();
            for (int i = 0; i < list.size(); i++) if (!same(a.get(i), list.get(i))) return false;
            return true;
        }
        return isNumber(v) && v.getAsDouble() == (Double) ours;
    }

    private static JsonObject object(JsonObject parent, String key, String example) {
        JsonElement e = parent.get(key);
        if (!e.isJsonObject()) throw new UserError("--config: " + key + " must be an object such as " + example + ", not " + e);
        return e.getAsJsonObject();
    }

    private static boolean isAuto(JsonElement e) {
        return e.isJsonPrimitive() && e.getAsJsonPrimitive().isString() && e.getAsString().equalsIgnoreCase(AUTO);
    }

    private static boolean isBoolean(JsonElement e) {
        return e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean();
    }

    private static boolean isNumber(JsonElement e) {
        return e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber();
    }

    private static boolean isWhole(JsonElement e) {
        if (!isNumber(e)) return false;
        double d = e.getAsDouble();
        return d == Math.rint(d) && Math.abs(d) < 9e15;
    }

    /** A positive whole number (DeepSpeed's batch sizes and counts), or one line naming the key. */
    private static long whole(JsonElement e, String key) {
        if (!isWhole(e) || e.getAsDouble() < 1)
            throw new UserError("--config: " + key + " must be a positive whole number or \"auto\", not " + e);
        return e.getAsLong();
    }

    private static double number(JsonElement e, String key, String what) {
        if (!isNumber(e)) throw new UserError("--config: " + key + " must be " + what + ", not " + e);
        return e.getAsDouble();
    }

    private static String kind(JsonElement e) {
        if (e.isJsonArray()) return "an array";
        JsonPrimitive p = e.getAsJsonPrimitive();
        return p.isString() ? "a string" : p.isNumber() ? "a number" : "a boolean";
    }

    private static String show(Object v) {
        if (v instanceof Double d && d == Math.rint(d) && Math.abs(d) < 1e15) return String.valueOf(d.longValue());
        if (v instanceof List<?> l) return l.stream().map(DeepSpeedConfig::show).collect(Collectors.joining(", ", "[", "]"));
        return String.valueOf(v);
    }
}
