import ChorusLLM
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// SmolLM2-135M-Instruct from its GGUF file (scripts/fetch-models).
@Suite struct SmolLM2Tests {
    static let path = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

    static func greedy(_ lm: GGUFLanguageModel, _ prompt: [Int], count: Int) -> [Int] {
        var cache = lm.model.newCache(capacity: prompt.count + count)
        var last = lm.lastLogits(prompt, cache: &cache)
        var out: [Int] = []
        for _ in 0..<count {
            let next = last.indices.max { last[$0] < last[$1] } ?? 0
            out.append(next)
            if lm.eosTokenIds.contains(next) { break }
            last = lm.lastLogits([next], cache: &cache)
        }
        return out
    }

    @Test func answersAPlainQuestion() throws {
        let lm = try GGUFLanguageModel(path: try RealModels.path(Self.path))
        let config = try #require((lm.model as? LlamaModel)?.config)
        #expect(lm.architecture == "llama" && config.numHiddenLayers == 30 && config.hiddenSize == 576 && config.keyValueHeads == 3 && config.tieWordEmbeddings)
        let prompt = lm.promptIDs("The capital of France is")
        let text = lm.tokenizer.decode(Self.greedy(lm, prompt, count: 8), skipSpecialTokens: true)
        print("prompt \(prompt) → \(text)")
        #expect(text.contains("Paris"), "\(text)")
    }
}

extension SmolLM2Tests {
    /// A two-turn conversation through the file's template (llama.cpp answers the same, with a lead of 4.2
    /// logits at its first token: scripts/fixtures/make_llm_references.py). A one-turn "capital of France"
    /// is no test: llama.cpp itself starts "L'Étoile…" there, 0.35 ahead of "The".
    @Test func answersThroughItsChatTemplate() throws {
        let lm = try GGUFLanguageModel(path: try RealModels.path(Self.path))
        let prompt = try lm.chatPrompt([("user", "What is the capital of France?"), ("assistant", "The capital of France is Paris."),
                                        ("user", "And what is the capital of Germany?")])
        #expect(prompt.hasPrefix("<|im_start|>system\n") && prompt.hasSuffix("<|im_start|>user\nAnd what is the capital of Germany?<|im_end|>\n<|im_start|>assistant\n"), "\(prompt)")
        let ids = lm.promptIDs(prompt)
        // The template's markers are single control tokens, not spelled out.
        #expect(ids.first == lm.tokenizer.tokenID("<|im_start|>") && ids.filter { $0 == lm.tokenizer.tokenID("<|im_end|>") }.count == 4)
        let answer = lm.tokenizer.decode(Self.greedy(lm, ids, count: 12), skipSpecialTokens: true)
        #expect(answer.hasPrefix("The capital of Germany is Berlin."), "\(answer)")
    }
}

extension SmolLM2Tests {
    /// A seeded, sampled answer is the same whether the prompt is new or sits in the prefix cache: the last
    /// prompt position always goes through alone, so both compute its logits in one order (they used to part at
    /// the second word, the cached one through the decode kernels, the fresh one inside the prompt's batch).
    @Test func aSeededSampleRepeatsWhenThePromptIsCached() throws {
        let lm = try GGUFLanguageModel(path: try RealModels.path(Self.path))
        let generator = TextGenerator(model: lm.model, tokenizer: lm.tokenizer, eosTokenIds: Set(lm.eosTokenIds), contextLength: lm.contextLength)
        let ids = lm.promptIDs(try lm.chatPrompt([("system", "You write prompts for an image generator. Rewrite the subject."),
                                                  ("user", "a lighthouse")]))
        let sampling = SamplingOptions(temperature: 0.7, topP: 0.9, seed: 3)
        let fresh = try generator.generate(promptIDs: ids, maxNewTokens: 24, sampling: sampling)
        let cached = try generator.generate(promptIDs: ids, maxNewTokens: 24, sampling: sampling)
        #expect(fresh.reusedPromptTokens == 0 && cached.reusedPromptTokens == ids.count - 1)
        #expect(cached.tokenIDs == fresh.tokenIDs, "\(fresh.text) | \(cached.text)")
        #expect(!fresh.tokenIDs.isEmpty)
    }
}
