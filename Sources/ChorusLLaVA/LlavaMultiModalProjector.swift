import ChorusTensor

/// `multi_modal_projector`: vision features → the language model's embedding space (linear, GELU, linear).
struct LlavaMultiModalProjector: Sendable {
    let linear1: Linear
    let linear2: Linear
    let activation: Activation

    init(_ w: WeightSource, _ prefix: String, config: LlavaConfig) throws {
        linear1 = try Linear(w, "\(prefix).linear_1", bias: config.multimodalProjectorBias)
        linear2 = try Linear(w, "\(prefix).linear_2", bias: config.multimodalProjectorBias)
        guard let activation = Activation(configName: config.projectorHiddenAct) else {
            throw WeightFileError("config.json", "projector_hidden_act '\(config.projectorHiddenAct)' is not supported")
        }
        self.activation = activation
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = linear1(x)
        h.apply(activation)
        return linear2(h)
    }
}
