package parallax.magics;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.plan.InferencePlan;
import parallax.engine.plan.ModelName;
import parallax.engine.plan.ModelSpec;
import parallax.engine.report.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/** {@code %model NAME}: what each part of a model's name means, and a %plan line for its size. */
@Command(name = "model", description = {
        "Decode a model name: family, version, size (7B, 8x7B, A14B), purpose, training, modality, context, encoding, shards, GGUF fields.",
        "Examples: %%model Mixtral-8x7B-Instruct-v0.1",
        "          %%model mistral-7b-instruct-v0.2.Q4_K_M.gguf",
        "          %%model Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"})
public final class ModelCommand extends MagicCommand {

    @Parameters(arity = "1..*", paramLabel = "NAME", description = "One or more model names or file names.")
    List<String> names;

    @Override
    protected Report execute() {
        Report.Builder r = Report.builder(names.size() == 1 ? "Model name: " + names.get(0) : "Model names");
        List<Object> data = new ArrayList<>();
        for (String n : names) {
            ModelName.Decoded d = ModelName.decode(n);
            Table t = Table.create(n);
            StringColumn tok = StringColumn.create("token"), kind = StringColumn.create("kind"), meaning = StringColumn.create("meaning"),
                    field = StringColumn.create("GGUF field");
            for (ModelName.Token x : d.tokens()) {
                tok.append(x.text());
                kind.append(x.kind().name().toLowerCase(Locale.ROOT));
                meaning.append(x.meaning());
                field.append(x.ggufField());
            }
            boolean showField = "gguf".equals(d.format());
            if (showField) t.addColumns(tok, kind, meaning, field);
            else t.addColumns(tok, kind, meaning);
            r.table(t, n);
            r.text(summary(d));
            data.add(json(d));
        }
        r.text("Conventions: GGUF file names follow BaseName-SizeLabel-FineTune-Version-Encoding-Type-Shard.gguf (ggml docs/gguf.md); "
                + "size labels count parameters (B = 10^9); NxM is N experts of about M each; AnB is n billion active per token.");
        return r.data(data.size() == 1 ? data.get(0) : data).build();
    }

    static String summary(ModelName.Decoded d) {
        StringBuilder sb = new StringBuilder();
        if (d.catalog().isPresent()) {
            ModelSpec m = d.catalog().get();
            sb.append(String.format("**Shape** from the catalog (%s): %,d parameters%s. ", m.name(), m.parameters(),
                    m.moe() ? String.format(", %,d active per token", m.activeParameters()) : ""));
            sb.append(planLines(m, d));
        } else if (d.parameters() != null) {
            double p = d.parameters() * (d.experts() != null ? d.experts() : 1);
            sb.append(String.format("**Size** about %s parameters%s; no catalog shape for this exact name. ",
                    words(p), d.experts() != null ? " nominal (experts share attention, so the real total is lower)" : ""));
            if (d.encoding() != null) {
                sb.append(String.format("At %s that is roughly %.1f GB of weights. ", d.encoding(), p * bitsOf(d.encoding()) / 8 / 1e9));
            }
            if (d.nearest().isPresent()) {
                sb.append("Closest catalog shape: ").append(d.nearest().get().name()).append(". ").append(planLines(d.nearest().get(), d));
            } else {
                sb.append("Plan it with explicit shapes: `%plan --layers L --hidden H --heads A --vocab V --gpus N`.");
            }
        } else {
            sb.append("No size in the name: give its config.json to `%plan --config config.json` to size it.");
        }
        return sb.toString();
    }

    static String planLines(ModelSpec m, ModelName.Decoded d) {
        String enc = d.encoding() != null ? encodingFlag(d.encoding()) : "f16";
        String infer = "`%plan " + m.name() + " --infer --encoding " + enc + "`";
        String gpus = m.parameters() < 2e9 ? "1" : m.parameters() < 15e9 ? "8" : m.parameters() < 40e9 ? "16" : "64";
        String train = "`%plan " + m.name() + " --gpus " + gpus + " --search`";
        return "Suggested: " + infer + " (serving memory) and " + train + " (training layouts).";
    }

    static String encodingFlag(String e) {
        String l = e.toLowerCase(Locale.ROOT);
        for (InferencePlan.Encoding x : InferencePlan.Encoding.values()) if (x.label.equals(l)) return x.label;
        if (l.equals("fp16")) return "f16";
        if (l.startsWith("q4") || l.equals("awq") || l.equals("gptq") || l.equals("int4") || l.equals("4bit") || l.equals("nf4")) return "q4_0";
        if (l.startsWith("q8") || l.equals("int8") || l.equals("8bit")) return "q8_0";
        return "f16";
    }

    static double bitsOf(String e) {
        String l = e.toLowerCase(Locale.ROOT);
        for (InferencePlan.Encoding x : InferencePlan.Encoding.values()) if (x.label.equals(l)) return x.bits;
        if (l.matches("i?q\\d.*")) return Integer.parseInt(l.replaceAll("^i?q(\\d).*", "$1")) + 0.5;
        return switch (l) {
            case "fp32" -> 32;
            case "fp16" -> 16;
            case "int8", "8bit" -> 8;
            case "awq", "gptq", "int4", "4bit", "nf4" -> 4.25;
            default -> 16;
        };
    }

    static String words(double n) {
        return n >= 1e12 ? String.format("%.3g trillion", n / 1e12) : n >= 1e9 ? String.format("%.3g billion", n / 1e9)
                : String.format("%.3g million", n / 1e6);
    }

    static Map<String, Object> json(ModelName.Decoded d) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("name", d.input());
        List<Map<String, String>> toks = new ArrayList<>();
        for (ModelName.Token t : d.tokens()) {
            Map<String, String> x = new LinkedHashMap<>();
            x.put("token", t.text());
            x.put("kind", t.kind().name().toLowerCase(Locale.ROOT));
            x.put("meaning", t.meaning());
            if (!t.ggufField().isEmpty()) x.put("gguf_field", t.ggufField());
            toks.add(x);
        }
        j.put("tokens", toks);
        j.put("family", d.family());
        j.put("version", d.version());
        j.put("parameters", d.parameters());
        j.put("experts", d.experts());
        j.put("active_parameters", d.activeParameters());
        j.put("context", d.context());
        j.put("encoding", d.encoding());
        j.put("format", d.format());
        j.put("shard", d.shard());
        j.put("catalog", d.catalog().map(ModelSpec::name).orElse(null));
        j.put("nearest", d.nearest().map(ModelSpec::name).orElse(null));
        return j;
    }
}
