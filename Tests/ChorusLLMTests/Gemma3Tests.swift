import ChorusLLM
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// Gemma 3 270M from its GGUF file (scripts/fetch-models): the architecture, its SentencePiece tokenizer and
/// its chat format.
@Suite struct Gemma3Tests {
    static let path = "gemma-3-270m/gemma-3-270m-q4_k_m.gguf"

    /// The file is the base model (google/gemma-3-270m, not -it): its continuations are compared with
    /// llama.cpp's in LlamaCppReferenceTests; here the tokens, the format and the layer pattern.
    @Test func tokenizesAndFormatsAsGemma() throws {
        let lm = try GGUFLanguageModel(path: try RealModels.path(Self.path))
        let config = try #require((lm.model as? Gemma3Model)?.config)
        #expect(lm.architecture == "gemma3" && config.numHiddenLayers == 18 && config.headDim == 256 && config.numKeyValueHeads == 1)
        #expect((0..<18).filter { !config.isSliding(layer: $0) } == [5, 11, 17])
        let plain = lm.promptIDs("The capital of France is")
        // Gemma 3's tokenizer: <bos> The ▁capital ▁of ▁France ▁is.
        #expect(plain == [2, 818, 5279, 529, 7001, 563], "\(plain)")

        let prompt = try lm.chatPrompt([("user", "What is the capital of France?")])
        #expect(prompt == "<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n", "\(prompt)")
        let ids = lm.promptIDs(prompt)
        #expect(ids == [2, 105, 2364, 107, 3689, 563, 506, 5279, 529, 7001, 236881, 106, 107, 105, 4368, 107], "\(ids)")
        #expect(lm.eosTokenIds.contains(1) && lm.eosTokenIds.contains(106), "\(lm.eosTokenIds)")
    }
}
