package parallax.engine.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import parallax.engine.UserError;
import parallax.engine.plan.ModelName.Kind;

class ModelNameTest {

    /**
     * Real names from the Hub and llama.cpp releases. Columns: name | family | version | parameters (0 = none)
     * | experts (0 = dense) | encoding ("" = none) | catalog entry ("" = none) | tokens that must be read as a kind,
     * "KIND:token" separated by spaces.
     */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "meta-llama/Llama-2-7b-hf | LLaMA | 2 | 7e9 | 0 | '' | llama-2-7b | PUBLISHER:meta-llama FORMAT:hf",
            "meta-llama/Llama-2-70b-chat-hf | LLaMA | 2 | 70e9 | 0 | '' | llama-2-70b | PURPOSE:chat",
            "meta-llama/Meta-Llama-3-8B-Instruct | LLaMA | 3 | 8e9 | 0 | '' | llama-3-8b | PUBLISHER:Meta PURPOSE:Instruct",
            "Meta-Llama-3-70B | LLaMA | 3 | 70e9 | 0 | '' | llama-3-70b | SIZE:70B",
            "meta-llama/Llama-3.1-8B-Instruct | LLaMA | 3.1 | 8e9 | 0 | '' | '' | VERSION:3.1",
            "meta-llama/Llama-3.2-11B-Vision-Instruct | LLaMA | 3.2 | 11e9 | 0 | '' | '' | MODALITY:Vision PURPOSE:Instruct",
            "mistralai/Mistral-7B-v0.1 | Mistral | 0.1 | 7e9 | 0 | '' | mistral-7b | VERSION:v0.1",
            "mistralai/Mistral-7B-Instruct-v0.2 | Mistral | 0.2 | 7e9 | 0 | '' | mistral-7b | PURPOSE:Instruct",
            "mistralai/Mixtral-8x7B-Instruct-v0.1 | Mixtral | 0.1 | 7e9 | 8 | '' | mixtral-8x7b | EXPERTS:8x7B",
            "Mixtral-8x22B-v0.1 | Mixtral | 0.1 | 22e9 | 8 | '' | mixtral-8x22b | EXPERTS:8x22B",
            "Mixtral-8x7B-v0.1-Q4_0-00001-of-00009.gguf | Mixtral | 0.1 | 7e9 | 8 | Q4_0 | mixtral-8x7b | SHARD:00001-of-00009 FORMAT:.gguf",
            "mistral-7b-instruct-v0.2.Q4_K_M.gguf | Mistral | 0.2 | 7e9 | 0 | Q4_K_M | mistral-7b | ENCODING:Q4_K_M",
            "llama-2-7b-chat.ggmlv3.q4_0.bin | LLaMA | 2 | 7e9 | 0 | Q4_0 | llama-2-7b | FORMAT:ggmlv3 FORMAT:.bin PURPOSE:chat",
            "Hermes-2-Pro-Llama-3-8B-Q8_0.gguf | Hermes | 2 | 8e9 | 0 | Q8_0 | '' | ENCODING:Q8_0 FAMILY:Llama VERSION:3",
            "openai-community/gpt2 | GPT | 2 | 0 | 0 | '' | gpt2 | FAMILY:gpt2",
            "gpt2-medium | GPT | 2 | 0 | 0 | '' | gpt2-medium | SCALE:medium",
            "gpt2-xl | GPT | 2 | 0 | 0 | '' | gpt2-xl | SCALE:xl",
            "bert-base-uncased | BERT | '' | 0 | 0 | '' | bert-base | SCALE:base CASING:uncased",
            "bert-large-cased | BERT | '' | 0 | 0 | '' | '' | SCALE:large CASING:cased",
            "distilbert-base-uncased | DistilBERT | '' | 0 | 0 | '' | '' | SCALE:base",
            "google/flan-t5-xxl | FLAN-T5 | '' | 0 | 0 | '' | '' | SCALE:xxl",
            "t5-small | T5 | '' | 0 | 0 | '' | '' | SCALE:small",
            "Qwen/Qwen2.5-7B-Instruct | Qwen | 2.5 | 7e9 | 0 | '' | qwen2.5-7b | PURPOSE:Instruct",
            "Qwen/Qwen2.5-0.5B | Qwen | 2.5 | 0.5e9 | 0 | '' | qwen2.5-0.5b | SIZE:0.5B",
            "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ | Qwen | 2.5 | 32e9 | 0 | AWQ | qwen2.5-32b | PURPOSE:Coder ENCODING:AWQ",
            "Qwen/Qwen2.5-Math-72B-Instruct | Qwen | 2.5 | 72e9 | 0 | '' | qwen2.5-72b | PURPOSE:Math",
            "Qwen/Qwen2.5-VL-7B-Instruct | Qwen | 2.5 | 7e9 | 0 | '' | qwen2.5-7b | MODALITY:VL",
            "Qwen/Qwen2-57B-A14B-Instruct | Qwen | 2 | 57e9 | 0 | '' | '' | ACTIVE:A14B",
            "Qwen/Qwen3-30B-A3B | Qwen | 3 | 30e9 | 0 | '' | qwen3-30b-a3b | ACTIVE:A3B",
            "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4 | Qwen | 2.5 | 7e9 | 0 | INT4 | qwen2.5-7b | ENCODING:GPTQ",
            "Qwen/Qwen2-7B-Instruct-GGUF | Qwen | 2 | 7e9 | 0 | '' | '' | FORMAT:GGUF",
            "codellama/CodeLlama-34b-Instruct-hf | Code Llama | '' | 34e9 | 0 | '' | '' | FAMILY:CodeLlama",
            "TinyLlama/TinyLlama-1.1B-Chat-v1.0 | TinyLlama | 1.0 | 1.1e9 | 0 | '' | '' | VERSION:v1.0",
            "google/gemma-2-9b-it | Gemma | 2 | 9e9 | 0 | '' | '' | PURPOSE:it",
            "google/gemma-7b-pt | Gemma | '' | 7e9 | 0 | '' | '' | TRAINING:pt",
            "microsoft/Phi-3-mini-128k-instruct | Phi | 3 | 0 | 0 | '' | '' | SCALE:mini CONTEXT:128k",
            "microsoft/phi-2 | Phi | 2 | 0 | 0 | '' | '' | VERSION:2",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B | DeepSeek | '' | 7e9 | 0 | '' | '' | TRAINING:Distill FAMILY:Qwen",
            "deepseek-ai/deepseek-coder-6.7b-instruct | DeepSeek | '' | 6.7e9 | 0 | '' | '' | PURPOSE:coder",
            "HuggingFaceH4/zephyr-7b-beta | Zephyr | '' | 7e9 | 0 | '' | '' | SIZE:7b",
            "openai/clip-vit-large-patch14 | CLIP | '' | 0 | 0 | '' | '' | SCALE:large",
            "BAAI/bge-large-en-v1.5 | BGE | 1.5 | 0 | 0 | '' | '' | VERSION:v1.5",
            "tiiuae/falcon-40b-instruct | Falcon | '' | 40e9 | 0 | '' | '' | PURPOSE:instruct",
            "mistralai/Mistral-Nemo-Instruct-2407 | Mistral | '' | 0 | 0 | '' | '' | VERSION:2407",
            "Llama-2-7b-chat-hf-lora | LLaMA | 2 | 7e9 | 0 | '' | llama-2-7b | TRAINING:lora",
            "zephyr-7b-dpo-qlora | Zephyr | '' | 7e9 | 0 | '' | '' | TRAINING:dpo TRAINING:qlora",
            "Meta-Llama-3-8B-Instruct-BF16.gguf | LLaMA | 3 | 8e9 | 0 | BF16 | llama-3-8b | ENCODING:BF16",
            "Mistral-7B-Instruct-v0.3-IQ2_XXS.gguf | Mistral | 0.3 | 7e9 | 0 | IQ2_XXS | mistral-7b | ENCODING:IQ2_XXS",
            "BioMistral-7B | BioMistral | '' | 7e9 | 0 | '' | '' | SIZE:7B",
            "EleutherAI/gpt-neo-2.7B | GPT | '' | 2.7e9 | 0 | '' | '' | OTHER:neo",
            "openlm-research/open_llama_7b | LLaMA | '' | 7e9 | 0 | '' | '' | OTHER:open",
            "bigscience/bloomz-7b1-mt | BLOOMZ | '' | 7.1e9 | 0 | '' | '' | SIZE:7b1 OTHER:mt",
            "Llama-3-8B-LoRA-F16.gguf | LLaMA | 3 | 8e9 | 0 | F16 | llama-3-8b | TRAINING:LoRA",
            "bigscience/bloom-1b7 | BLOOM | '' | 1.7e9 | 0 | '' | '' | SIZE:1b7",
            "google/flan-t5-base | FLAN-T5 | '' | 0 | 0 | '' | '' | FAMILY:flan FAMILY:t5 SCALE:base",
            "Qwen2.5-7B-base | Qwen | 2.5 | 7e9 | 0 | '' | qwen2.5-7b | TRAINING:base",
            "mistralai/Pixtral-12B-2409 | Pixtral | '' | 12e9 | 0 | '' | '' | VERSION:2409",
            "lmsys/vicuna-13b-v1.5-16k | Vicuna | 1.5 | 13e9 | 0 | '' | '' | CONTEXT:16k VERSION:v1.5",
            "ggml-vocab-llama.gguf | LLaMA | '' | 0 | 0 | '' | '' | FORMAT:ggml TYPE:vocab FORMAT:.gguf",
            "llama-3-8b-adapter.gguf | LLaMA | 3 | 8e9 | 0 | '' | llama-3-8b | TRAINING:adapter",
            "mixtral-8x22b-a39b | Mixtral | '' | 22e9 | 8 | '' | mixtral-8x22b | ACTIVE:a39b",
            "Llama 3.1 8B Instruct | LLaMA | 3.1 | 8e9 | 0 | '' | '' | SIZE:8B PURPOSE:Instruct",
            "llama-2-7b-q6_k.gguf | LLaMA | 2 | 7e9 | 0 | Q6_K | llama-2-7b | ENCODING:q6_k",
            "llama-2-7b-frobnicated-42 | LLaMA | 2 | 7e9 | 0 | '' | llama-2-7b | UNKNOWN:frobnicated UNKNOWN:42",
    })
    void decodesRealNames(String name, String family, String version, double params, int experts, String encoding,
                          String catalog, String kinds) {
        ModelName.Decoded d = ModelName.decode(name);
        assertEquals(family, d.family(), name + " family");
        assertEquals(version.isEmpty() ? null : version, d.version(), name + " version");
        assertEquals(params == 0 ? null : params, d.parameters(), name + " parameters");
        assertEquals(experts == 0 ? null : experts, d.experts(), name + " experts");
        assertEquals(encoding.isEmpty() ? null : encoding, d.encoding(), name + " encoding");
        assertEquals(catalog.isEmpty() ? null : catalog, d.catalog().map(ModelSpec::name).orElse(null), name + " catalog");
        for (String k : kinds.trim().split(" ")) {
            String[] kv = k.split(":", 2);
            Kind kind = Kind.valueOf(kv[0]);
            assertTrue(d.tokens().stream().anyMatch(t -> t.kind() == kind && t.text().equals(kv[1])),
                    name + ": expected " + kv[1] + " as " + kind + " in " + d.tokens());
        }
        // Every character of the name shows up in some token (nothing silently dropped).
        String joined = String.join("", d.tokens().stream().map(ModelName.Token::text).toList()).toLowerCase(Locale.ROOT);
        for (String part : name.toLowerCase(Locale.ROOT).split("[-_./ ]+")) {
            if (part.isEmpty() || part.matches("\\d{5}") || part.equals("of")) continue;
            assertTrue(joined.contains(part), name + ": lost '" + part + "'");
        }
    }

    /**
     * Every field and every token (kind, GGUF field, meaning) of the names in
     * model-names.txt, exactly as the decoder wrote them when the file was recorded: a
     * change to any meaning text or token kind shows up here. Each entry is a "name:" line
     * followed by {@link #render} of its decode.
     */
    @Test
    void decodesEveryRecordedNameExactly() throws IOException {
        String recorded;
        try (InputStream in = ModelNameTest.class.getResourceAsStream("model-names.txt")) {
            recorded = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        List<String> names = new ArrayList<>();
        for (String line : recorded.split("\n")) if (line.startsWith("name: ")) names.add(line.substring(6));
        assertTrue(names.size() > 100, "recorded names: " + names.size());
        StringBuilder now = new StringBuilder();
        for (String n : names) now.append("name: ").append(n).append('\n').append(render(ModelName.decode(n)));
        assertEquals(recorded, now.toString());
    }

    static String render(ModelName.Decoded d) {
        StringBuilder sb = new StringBuilder();
        sb.append("  family=").append(d.family()).append(" version=").append(d.version()).append(" parameters=").append(d.parameters())
                .append(" experts=").append(d.experts()).append(" active=").append(d.activeParameters()).append(" context=").append(d.context())
                .append(" encoding=").append(d.encoding()).append(" format=").append(d.format()).append(" shard=").append(d.shard())
                .append(" purposes=").append(d.purposes()).append(" catalog=").append(d.catalog().map(ModelSpec::name).orElse("-"))
                .append(" nearest=").append(d.nearest().map(ModelSpec::name).orElse("-")).append('\n');
        for (ModelName.Token t : d.tokens()) {
            sb.append("  ").append(t.kind()).append(' ').append(t.text()).append(" [").append(t.ggufField()).append("] ")
                    .append(t.meaning()).append('\n');
        }
        return sb.toString();
    }

    @Test
    void ggufFieldsFollowTheConvention() {
        ModelName.Decoded d = ModelName.decode("Mixtral-8x7B-Instruct-v0.1-Q4_K_M-00002-of-00003.gguf");
        String fields = String.join(",", d.tokens().stream().map(ModelName.Token::ggufField).filter(f -> !f.isEmpty()).toList());
        assertEquals("BaseName,SizeLabel,FineTune,Version,Encoding,Shard", fields);
        assertEquals("00002-of-00003", d.shard());
        assertEquals(Arrays.asList("instruct"), d.purposes());
    }

    @Test
    void unknownPartsAreSaidSo() {
        ModelName.Decoded d = ModelName.decode("llama-2-7b-frobnicated");
        assertTrue(d.tokens().stream().anyMatch(t -> t.kind() == Kind.UNKNOWN && t.text().equals("frobnicated")));
        assertTrue(assertThrows(UserError.class, () -> ModelName.decode("  ")).getMessage().contains("give a model name"));
    }

    @Test
    void sizeWithoutCatalogSuggestsNearest() {
        ModelName.Decoded d = ModelName.decode("Yi-34B-Chat");
        assertTrue(d.catalog().isEmpty());
        assertEquals("qwen2.5-32b", d.nearest().map(ModelSpec::name).orElse(null));
        assertEquals("mixtral-8x7b", ModelName.decode("Qwen2-57B-A14B").nearest().map(ModelSpec::name).orElse(null));
    }
}
