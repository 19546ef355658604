import ChorusTensor
import Foundation

/// `wavenet`: gated dilated convolutions with residual and skip outputs (optionally speaker-conditioned).
package struct VitsWaveNet: Sendable {
    package let inLayers: [VitsConv1d]
    package let resSkipLayers: [VitsConv1d]
    package let condLayer: VitsConv1d?
    package let hidden: Int

    package init(_ w: WeightSource, _ prefix: String, layers: Int, config: VitsConfig) throws {
        let k = config.wavenetKernelSize
        inLayers = try (0..<layers).map { i in
            var dilation = 1
            for _ in 0..<i { dilation *= config.wavenetDilationRate }
            return try VitsConv1d(w, "\(prefix).in_layers.\(i)", padding: (k * dilation - dilation) / 2, dilation: dilation)
        }
        resSkipLayers = try (0..<layers).map { try VitsConv1d(w, "\(prefix).res_skip_layers.\($0)") }
        condLayer = config.speakerEmbeddingSize > 0 ? try VitsConv1d(w, "\(prefix).cond_layer") : nil
        hidden = config.hiddenSize
    }

    package func callAsFunction(_ input: Tensor, speaker: Tensor?) -> Tensor {
        var x = input
        let t = x.shape[2]
        var output = Tensor(zeros: x.shape)
        let conditioning = condLayer.flatMap { layer in speaker.map { layer($0) } }  // [1, 2H·layers, 1]
        for (i, inLayer) in inLayers.enumerated() {
            let h = inLayer(x)
            // tanh(a) · σ(b): pointer loops over fastTanh/fastExp that vectorise (through Array subscripts and
            // libm's expf this gate cost half as much as the convolution before it).
            var acts = [Float].unset(hidden * t)
            h.storage.withUnsafeBufferPointer { hp in
                acts.withUnsafeMutableBufferPointer { out in
                    for c in 0..<hidden {
                        let gt = conditioning?.storage[i * 2 * hidden + c] ?? 0
                        let gs = conditioning?.storage[i * 2 * hidden + hidden + c] ?? 0
                        let a = hp.baseAddress! + c * t, b = hp.baseAddress! + (hidden + c) * t, o = out.baseAddress! + c * t
                        for j in 0..<t { o[j] = fastTanh(a[j] + gt) / (1 + fastExp(-(b[j] + gs))) }
                    }
                }
            }
            let resSkip = resSkipLayers[i](Tensor(shape: [1, hidden, t], storage: acts))
            if i < inLayers.count - 1 {
                x = x + resSkip.channels(0..<hidden)
                output = output + resSkip.channels(hidden..<(2 * hidden))
            } else {
                output = output + resSkip
            }
        }
        return output
    }
}

/// `flow.flows.N`: a mean-only affine coupling layer; in reverse the second half loses the mean the
/// first half predicts.
package struct VitsResidualCouplingLayer: Sendable {
    package let convPre: VitsConv1d
    package let wavenet: VitsWaveNet
    package let convPost: VitsConv1d

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        convPre = try VitsConv1d(w, "\(prefix).conv_pre")
        wavenet = try VitsWaveNet(w, "\(prefix).wavenet", layers: config.priorEncoderNumWavenetLayers, config: config)
        convPost = try VitsConv1d(w, "\(prefix).conv_post")
    }

    package func reverse(_ x: Tensor, speaker: Tensor?) -> Tensor {
        let half = x.shape[1] / 2
        let first = x.channels(0..<half)
        let mean = convPost(wavenet(convPre(first), speaker: speaker))
        return Tensor.concatenate([first, x.channels(half..<(2 * half)) - mean], axis: 1)
    }
}

/// `flow`: the prior's normalising flow, run backwards from the expanded prior to the spectrogram latents.
package struct VitsResidualCouplingBlock: Sendable {
    package let flows: [VitsResidualCouplingLayer]

    package init(_ w: WeightSource, config: VitsConfig) throws {
        flows = try (0..<config.priorEncoderNumFlows).map { try VitsResidualCouplingLayer(w, "flow.flows.\($0)", config: config) }
    }

    package func reverse(_ x: Tensor, speaker: Tensor?) -> Tensor {
        var x = x
        for flow in flows.reversed() { x = flow.reverse(x.flippedChannels(), speaker: speaker) }
        return x
    }
}
