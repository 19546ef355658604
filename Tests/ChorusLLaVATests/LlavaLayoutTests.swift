import ChorusLLaVA
import ChorusLLM
import ChorusTensor
import Foundation
import Testing

/// The checkpoint layouts LLaVA folders come in load to the same model: llava-hf's
/// (`vision_tower.vision_model.*`, `language_model.model.*`, `language_model.lm_head.weight`),
/// transformers 5's (`model.vision_tower.*`, `model.language_model.*`, `lm_head.weight`) and the
/// fixture's own mixture.
@Suite struct LlavaLayoutTests {
    static let weights = try! SafeTensorsFile(path: LlavaFixtureTests.folder + "/model.safetensors")
    static let config = try! JSONConfig.load(LlavaConfig.self, from: LlavaFixtureTests.folder + "/config.json")

    func renamed(_ rename: (String) -> String) throws -> TensorDictionary {
        var tensors: [String: Tensor] = [:]
        for name in Self.weights.names { tensors[rename(name)] = try Self.weights.tensor(name) }
        return TensorDictionary(tensors, origin: "renamed fixture")
    }

    func promptLogits(_ weights: WeightSource, config: LlavaConfig = Self.config) throws -> [Float] {
        let model = try LlavaModel(weights: weights, config: config)
        let fixture = LlavaFixtureTests.fixture
        let ids = try fixture.int64s("input_ids").map(Int.init)
        var cache = model.languageModel.newCache()
        let features = model.imageFeatures(try fixture.tensor("pixel_values"))
        return model.languageModel.logits(model.languageModel.forward(model.embed(ids: ids, imageFeatures: features), cache: &cache)).storage
    }

    @Test func llavaHFAndTransformers5LayoutsGiveTheFixturesLogits() throws {
        let expected = try promptLogits(Self.weights)
        let llavaHF = try renamed { $0.replacingOccurrences(of: "vision_tower.", with: "vision_tower.vision_model.") }
        #expect(try promptLogits(llavaHF) == expected)
        let transformers5 = try renamed { name in
            if name == "language_model.lm_head.weight" { return "lm_head.weight" }
            return "model." + name.replacingOccurrences(of: "language_model.model.", with: "language_model.")
        }
        #expect(try promptLogits(transformers5) == expected)
    }

    @Test func aTiedHeadUsesTheEmbeddingsAndAMissingOneIsAClearError() throws {
        let untied = try renamed { $0 }
        var tensors = untied.tensors
        tensors["language_model.lm_head.weight"] = nil
        #expect(throws: WeightFileError.self) { try LlavaModel(weights: TensorDictionary(tensors, origin: "no head"), config: Self.config) }
        var tied = Self.config
        tied.text.tieWordEmbeddings = true
        let model = try LlavaModel(weights: TensorDictionary(tensors, origin: "tied"), config: tied)
        #expect(model.languageModel.config.tieWordEmbeddings)
    }

    @Test func llama3RopeScalingFollowsTransformers() throws {
        let json = #"{"text_config": {"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}, "image_token_id": 7}"#
        let config = try JSONDecoder().decode(LlavaConfig.self, from: Data(json.utf8))
        #expect(config.imageTokenIndex == 7)
        #expect(config.text.rope.theta == 500_000)
        #expect(config.text.rope.scaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192))
        let legacy = #"{"text_config": {"rope_theta": 1000000.0, "rope_scaling": {"type": "linear", "factor": 2.0}, "eos_token_id": [2, 32007]}}"#
        let old = try JSONDecoder().decode(LlavaConfig.self, from: Data(legacy.utf8))
        #expect(old.text.rope == LlamaConfig.RoPE(theta: 1_000_000, scaling: .linear(factor: 2)))
        #expect(old.text.eosTokenIds == [2, 32007])
        let unknown = #"{"text_config": {"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}}"#
        #expect(throws: WeightFileError.self) { try JSONDecoder().decode(LlavaConfig.self, from: Data(unknown.utf8)) }
    }
}
