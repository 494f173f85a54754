// Runs a GGUF file in llama.cpp through node-llama-cpp and answers JSON requests, so the
// engine can compare llama.cpp's reading of a file with its own. Called by LlamaCpp.java:
//   node llama-judge.mjs REQUEST.json   (PARALLAX_NODE_LLAMA_CPP = the folder holding node_modules)
// Request: {"model": path, "f32Cache": bool, "threads": n, "ops": [op, ...]} where op is
//   {"op": "logprobs", "tokens": [...]}: after each prefix tokens[0..i], the log-probabilities
//       of every vocabulary token (llama.cpp's softmax of its logits, in float32);
//   {"op": "greedy", "tokens": [...], "n": k}: k tokens by argmax after the prompt;
//   {"op": "tokenize", "text": s}: llama.cpp's tokens for s (no BOS added, no special parsing).
// Answer on stdout: {"vocab": n, "results": [...]} or {"error": "one line"}.
import {readFileSync} from "node:fs";
import {pathToFileURL} from "node:url";
import {join} from "node:path";

// Exits only once the answer is flushed: a large answer written to a pipe is sent asynchronously.
const answer = (o, code) => process.stdout.write(JSON.stringify(o) + "\n", () => process.exit(code));
try {
    const req = JSON.parse(readFileSync(process.argv[2], "utf8"));
    const root = process.env.PARALLAX_NODE_LLAMA_CPP;
    const lib = await import(pathToFileURL(join(root, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
    const llama = await lib.getLlama({gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error, progressLogs: false});
    const model = await llama.loadModel({modelPath: req.model});
    const cache = req.f32Cache ? {experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"} : {};
    const context = await model.createContext({contextSize: req.contextSize, batchSize: req.contextSize, sequences: 1,
        threads: req.threads ?? 1, flashAttention: false, ...cache});
    const results = [];
    for (const op of req.ops) {
        if (op.op === "tokenize") {
            results.push(Array.from(model.tokenize(op.text, false)));
            continue;
        }
        const seq = context.getSequence();
        try {
            if (op.op === "logprobs") {
                const rows = [];
                const gen = seq.evaluateWithMetadata([op.tokens[0]], {probabilities: true}, {temperature: 0});
                let r = await gen.next();
                for (let i = 0; ; i++) {
                    const probs = r.value.probabilities;
                    const row = [];
                    for (const [token, p] of probs) row[token] = Math.log(p);
                    rows.push(row);
                    if (i + 1 >= op.tokens.length) break;
                    r = await gen.next(op.tokens[i + 1]);
                }
                await gen.return();
                results.push(rows);
            } else if (op.op === "greedy") {
                const tokens = [];
                for await (const t of seq.evaluate(op.tokens, {temperature: 0, yieldEogToken: true})) {
                    tokens.push(t);
                    if (tokens.length >= op.n) break;
                }
                results.push(tokens);
            } else {
                throw new Error("unknown op " + op.op);
            }
        } finally {
            seq.dispose();
        }
    }
    await context.dispose();
    await model.dispose();
    answer({results}, 0);
} catch (e) {
    answer({error: String(e && e.message ? e.message : e).split("\n")[0]}, 3);
}
