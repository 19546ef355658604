import ChorusTensor
import Foundation

/// A Piper voice (the original VITS code exported to ONNX) read into transformers' VitsModel names, and
/// the VitsConfig its shapes imply. Most initializers keep their module names (`enc_p.encoder…`); the
/// weight-norm-folded convolutions are anonymous (`onnx::Conv_8168`) and are named through the node
/// that consumes them (`/flow/flows.0/enc/in_layers.0/Conv` → `flow.flows.0.enc.in_layers.0.weight`).
/// Verified against transformers and ONNX Runtime by scripts/fixtures/piper_to_hf_check.py.
package enum PiperWeights {
    static func open(onnx path: String, voice: PiperVoiceConfig) throws -> (WeightSource, VitsConfig) {
        let onnx = try ONNXModel(path: path)
        let file = (path as NSString).lastPathComponent
        var piper: [String: Tensor] = [:]
        for (name, tensor) in onnx.initializers {
            if let module = moduleName(name, in: onnx) { piper[module] = tensor }
        }
        var hf: [String: Tensor] = [:]
        for (name, tensor) in piper {
            guard let renamed = huggingFaceName(name) else { continue }
            // Attention projections are 1-wide convolutions in Piper, linear layers in transformers.
            hf[renamed] = renamed.contains(".attention.") && renamed.hasSuffix("_proj.weight") && tensor.rank == 3 ? tensor.reshaped([tensor.shape[0], tensor.shape[1]]) : tensor
        }
        // The export folded flows.0's exp(−logs) into a constant C: log_scale = −ln C.
        if let folded = onnx.initializers["/dp/flows.0/Exp_output_0"] {
            hf["duration_predictor.flows.0.log_scale"] = Tensor(shape: folded.shape, storage: folded.storage.map { -logf($0) })
        } else if let logs = piper["dp.flows.0.logs"] {
            hf["duration_predictor.flows.0.log_scale"] = logs
        }
        let config = try derivedConfig(hf, onnx: onnx, voice: voice, file: file)
        return (TensorDictionary(hf, origin: file), config)
    }

    /// The module path of an initializer: its own name when the export kept it, else from its consumer.
    package static func moduleName(_ name: String, in onnx: ONNXModel) -> String? {
        if !name.hasPrefix("onnx::") && !name.hasPrefix("/") && name != "sid" { return name }
        for (node, index) in onnx.consumers(of: name) {
            let path = node.name.split(separator: "/").dropLast().joined(separator: ".")
            switch (node.opType, index) {
            case ("Conv", 1), ("ConvTranspose", 1): return "\(path).weight"
            case ("Conv", 2), ("ConvTranspose", 2): return "\(path).bias"
            case ("Gather", 0) where node.name.hasSuffix("/emb/Gather"): return "\(path).weight"
            default: continue
            }
        }
        return nil
    }

    /// Piper (original VITS) module names → transformers' VitsModel names; nil for what inference does
    /// not use.
    package static func huggingFaceName(_ name: String) -> String? {
        var parts = name.split(separator: ".").map(String.init)
        func rest(from i: Int) -> String { parts[i...].joined(separator: ".") }
        func normRename(_ s: String) -> String {
            s.replacingOccurrences(of: ".gamma", with: ".weight").replacingOccurrences(of: ".beta", with: ".bias")
        }
        guard let head = parts.first else { return nil }
        switch head {
        case "enc_p":
            if name == "enc_p.emb.weight" { return "text_encoder.embed_tokens.weight" }
            if parts[1] == "proj" { return "text_encoder.project.\(rest(from: 2))" }
            guard parts.count >= 5, parts[1] == "encoder", let i = Int(parts[3]) else { return nil }
            let layer = "text_encoder.encoder.layers.\(i)"
            switch parts[2] {
            case "attn_layers":
                let projections = ["conv_q": "q_proj", "conv_k": "k_proj", "conv_v": "v_proj", "conv_o": "out_proj"]
                if let projection = projections[parts[4]] { return "\(layer).attention.\(projection).\(rest(from: 5))" }
                return "\(layer).attention.\(rest(from: 4))"  // emb_rel_k, emb_rel_v
            case "norm_layers_1": return normRename("\(layer).layer_norm.\(rest(from: 4))")
            case "norm_layers_2": return normRename("\(layer).final_layer_norm.\(rest(from: 4))")
            case "ffn_layers": return "\(layer).feed_forward.\(rest(from: 4))"
            default: return nil
            }
        case "dp":
            func dds(_ s: String) -> String {
                normRename(s.replacingOccurrences(of: "convs.convs_sep.", with: "conv_dds.convs_dilated.")
                    .replacingOccurrences(of: "convs.convs_1x1.", with: "conv_dds.convs_pointwise.")
                    .replacingOccurrences(of: "convs.norms_", with: "conv_dds.norms_"))
            }
            func modules(_ s: String) -> String {
                dds(s).replacingOccurrences(of: "pre.", with: "conv_pre.", options: .anchored)
                    .replacingOccurrences(of: "proj.", with: "conv_proj.", options: .anchored)
            }
            if parts[1] == "flows", parts.count > 3, let i = Int(parts[2]) {
                if i == 0 { return parts[3] == "m" ? "duration_predictor.flows.0.translate" : nil }
                guard i % 2 == 1, i > 1 else { return nil }  // even ones are flips; flows.1 is not exported
                return "duration_predictor.flows.\((i + 1) / 2).\(modules(rest(from: 3)))"
            }
            if parts[1].hasPrefix("post") { return nil }  // training only
            return "duration_predictor.\(modules(rest(from: 1)))"
        case "flow":
            guard parts.count > 3, parts[1] == "flows", let i = Int(parts[2]), i % 2 == 0 else { return nil }
            let inner = rest(from: 3).replacingOccurrences(of: "enc.", with: "wavenet.", options: .anchored)
                .replacingOccurrences(of: "pre.", with: "conv_pre.", options: .anchored)
                .replacingOccurrences(of: "post.", with: "conv_post.", options: .anchored)
            return "flow.flows.\(i / 2).\(inner)"
        case "dec":
            parts[0] = "decoder"
            if parts.count > 1 && parts[1] == "ups" { parts[1] = "upsampler" }
            // HiFi-GAN ResBlock2 (one conv per dilation) keeps its convs under convs1.
            if parts.count > 3 && parts[1] == "resblocks" && parts[3] == "convs" { parts[3] = "convs1" }
            return parts.joined(separator: ".")
        case "emb_g":
            return "embed_speaker.\(rest(from: 1))"
        default:
            return nil
        }
    }

    /// The VitsConfig the tensors' shapes, the graph's attributes and the .onnx.json imply.
    package static func derivedConfig(_ w: [String: Tensor], onnx: ONNXModel, voice: PiperVoiceConfig, file: String) throws -> VitsConfig {
        func shape(_ name: String) throws -> [Int] {
            guard let t = w[name] else { throw WeightFileError(file, "has no tensor for \(name) (is this a Piper VITS voice?)") }
            return t.shape
        }
        func count(_ prefix: String) -> Int {
            var n = 0
            while w.keys.contains(where: { $0.hasPrefix("\(prefix).\(n).") }) { n += 1 }
            return n
        }
        func ints(_ node: String, _ attribute: String) -> [Int]? {
            guard case .ints(let values)? = onnx.nodes.first(where: { $0.name == node })?.attributes[attribute] else { return nil }
            return values.map(Int.init)
        }
        var c = VitsConfig()
        let embedding = try shape("text_encoder.embed_tokens.weight")
        (c.vocabSize, c.hiddenSize) = (embedding[0], embedding[1])
        c.numHiddenLayers = count("text_encoder.encoder.layers")
        let relative = try shape("text_encoder.encoder.layers.0.attention.emb_rel_k")
        c.windowSize = (relative[1] - 1) / 2
        c.numAttentionHeads = c.hiddenSize / relative[2]
        let ffn = try shape("text_encoder.encoder.layers.0.feed_forward.conv_1.weight")
        (c.ffnDim, c.ffnKernelSize) = (ffn[0], ffn[2])
        c.flowSize = try shape("text_encoder.project.weight")[0] / 2
        c.hiddenAct = "relu"

        c.priorEncoderNumFlows = count("flow.flows")
        c.priorEncoderNumWavenetLayers = count("flow.flows.0.wavenet.in_layers")
        c.wavenetKernelSize = try shape("flow.flows.0.wavenet.in_layers.0.weight")[2]
        c.wavenetDilationRate = 1

        c.upsampleInitialChannel = try shape("decoder.conv_pre.weight")[0]
        let stages = count("decoder.upsampler")
        c.upsampleKernelSizes = try (0..<stages).map { try shape("decoder.upsampler.\($0).weight")[2] }
        c.upsampleRates = (0..<stages).map { i in ints("/dec/ups.\(i)/ConvTranspose", "strides")?.first ?? c.upsampleKernelSizes[i] / 2 }
        let blocks = count("decoder.resblocks")
        guard stages > 0, blocks % stages == 0 else { throw WeightFileError(file, "\(blocks) residual blocks over \(stages) upsampling stages") }
        let perStage = blocks / stages
        c.resblock = w.keys.contains { $0.hasPrefix("decoder.resblocks.0.convs2.") } ? "1" : "2"
        c.resblockKernelSizes = try (0..<perStage).map { try shape("decoder.resblocks.\($0).convs1.0.weight")[2] }
        c.resblockDilationSizes = (0..<perStage).map { j in
            (0..<count("decoder.resblocks.\(j).convs1")).map { k in
                ints("/dec/resblocks.\(j)/\(c.resblock == "2" ? "convs" : "convs1").\(k)/Conv", "dilations")?.first ?? [1, 3, 5][min(k, 2)]
            }
        }
        c.leakyReluSlope = 0.1

        c.useStochasticDurationPrediction = true
        c.depthSeparableChannels = 2
        c.depthSeparableNumLayers = count("duration_predictor.conv_dds.convs_dilated")
        c.durationPredictorKernelSize = try shape("duration_predictor.conv_dds.convs_dilated.0.weight")[2]
        c.durationPredictorNumFlows = (w.keys.compactMap { key -> Int? in
            guard key.hasPrefix("duration_predictor.flows.") else { return nil }
            return Int(key.split(separator: ".")[2])
        }.max() ?? 0)
        c.durationPredictorFlowBins = (try shape("duration_predictor.flows.2.conv_proj.weight")[0] + 1) / 3
        c.durationPredictorTailBound = 5
        guard try shape("duration_predictor.conv_pre.weight")[0] == c.hiddenSize else {
            throw WeightFileError(file, "the duration predictor's width differs from the text encoder's; this layout is not supported")
        }

        c.numSpeakers = voice.numSpeakers ?? 1
        c.speakerEmbeddingSize = c.numSpeakers > 1 ? try shape("embed_speaker.weight")[1] : 0
        c.samplingRate = voice.audio.sampleRate
        c.noiseScale = voice.inference.noiseScale
        c.noiseScaleDuration = voice.inference.noiseW
        c.speakingRate = 1 / voice.inference.lengthScale
        return c
    }
}
