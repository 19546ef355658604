import ChorusTensor
import Foundation

/// `conv_dds`: dilated depth-separable convolutions (dilation k^i), each followed by channel layer norm
/// and GELU, with residuals.
package struct VitsDilatedDepthSeparableConv: Sendable {
    package struct Layer: Sendable {
        package let dilated: VitsConv1d, pointwise: VitsConv1d
        package let norm1: ChannelLayerNorm, norm2: ChannelLayerNorm
    }
    package let layers: [Layer]

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        let k = config.durationPredictorKernelSize, channels = config.hiddenSize
        layers = try (0..<config.depthSeparableNumLayers).map { i in
            var dilation = 1
            for _ in 0..<i { dilation *= k }
            return Layer(
                dilated: try VitsConv1d(w, "\(prefix).convs_dilated.\(i)", padding: (k * dilation - dilation) / 2, dilation: dilation, groups: channels),
                pointwise: try VitsConv1d(w, "\(prefix).convs_pointwise.\(i)"),
                norm1: try ChannelLayerNorm(w, "\(prefix).norms_1.\(i)"), norm2: try ChannelLayerNorm(w, "\(prefix).norms_2.\(i)"))
        }
    }

    package func callAsFunction(_ x: Tensor, conditioning: Tensor? = nil) -> Tensor {
        var x = conditioning.map { x + $0 } ?? x
        for layer in layers {
            var h = layer.norm1(layer.dilated(x))
            h.apply(.gelu)
            h = layer.norm2(layer.pointwise(h))
            h.apply(.gelu)
            x = x + h
        }
        return x
    }
}

/// A flow step of the stochastic duration predictor, run in reverse (inference only).
package protocol VitsDurationFlow: Sendable {
    func reverse(_ x: Tensor, conditioning: Tensor) -> Tensor
}

/// `flows.0`: x ↦ (x − translate)·exp(−log_scale) in reverse.
package struct VitsElementwiseAffine: VitsDurationFlow {
    package let translate: Tensor, logScale: Tensor

    package init(_ w: WeightSource, _ prefix: String) throws {
        translate = try w.tensor("\(prefix).translate")
        logScale = try w.tensor("\(prefix).log_scale")
    }

    package func reverse(_ x: Tensor, conditioning: Tensor) -> Tensor {
        let (c, t) = (x.shape[1], x.shape[2])
        var out = x.storage
        for ch in 0..<c {
            let shift = translate.storage[ch], factor = expf(-logScale.storage[ch])
            for i in 0..<t { out[ch * t + i] = (out[ch * t + i] - shift) * factor }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}

/// `flows.N` (N ≥ 1): a coupling layer whose second half goes through a rational-quadratic spline
/// parameterised from the first half.
package struct VitsConvFlow: VitsDurationFlow {
    package let convPre: VitsConv1d
    package let convDDS: VitsDilatedDepthSeparableConv
    package let convProj: VitsConv1d
    package let bins: Int
    package let tailBound: Float
    package let filterChannels: Int

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        convPre = try VitsConv1d(w, "\(prefix).conv_pre")
        convDDS = try VitsDilatedDepthSeparableConv(w, "\(prefix).conv_dds", config: config)
        convProj = try VitsConv1d(w, "\(prefix).conv_proj")
        bins = config.durationPredictorFlowBins
        tailBound = config.durationPredictorTailBound
        filterChannels = config.hiddenSize
    }

    package func reverse(_ x: Tensor, conditioning: Tensor) -> Tensor {
        let half = x.shape[1] / 2, t = x.shape[2]
        precondition(half == 1, "VITS duration flows have 2 channels")
        let first = x.channels(0..<half)
        let params = convProj(convDDS(convPre(first), conditioning: conditioning))  // [1, 3·bins−1, T]
        let norm = 1 / Float(filterChannels).squareRoot()
        var out = x.storage
        for i in 0..<t {
            let column = (0..<params.shape[1]).map { params.storage[$0 * t + i] }
            out[t + i] = RationalQuadraticSpline.inverse(
                x.storage[t + i],
                widths: column[0..<bins].map { $0 * norm }, heights: column[bins..<(2 * bins)].map { $0 * norm },
                derivatives: Array(column[(2 * bins)...]), tailBound: tailBound)
        }
        return Tensor(shape: x.shape, storage: out)
    }
}

/// The inverse of the monotonic rational-quadratic spline (Durkan et al. 2019) as transformers'
/// `_unconstrained_rational_quadratic_spline`: identity outside ±tailBound.
package enum RationalQuadraticSpline {
    package static let minBinWidth: Float = 1e-3, minBinHeight: Float = 1e-3, minDerivative: Float = 1e-3

    package static func inverse(_ y: Float, widths uw: [Float], heights uh: [Float], derivatives ud: [Float], tailBound b: Float) -> Float {
        guard y >= -b && y <= b else { return y }
        let bins = uw.count
        func knots(_ raw: [Float], minimum: Float) -> [Float] {
            let top = raw.max() ?? 0
            let e = raw.map { expf($0 - top) }
            let sum = e.reduce(0, +)
            var cumulative: [Float] = [0]
            var running: Float = 0
            for v in e {
                running += minimum + (1 - minimum * Float(bins)) * (v / sum)
                cumulative.append(running)
            }
            var knots = cumulative.map { 2 * b * $0 - b }
            knots[0] = -b
            knots[bins] = b
            return knots
        }
        let cumulativeWidths = knots(uw, minimum: minBinWidth)
        let cumulativeHeights = knots(uh, minimum: minBinHeight)
        // Interior derivatives from softplus; the two ends are pinned to 1 (softplus(constant) + min = 1).
        let constant = logf(expf(1 - minDerivative) - 1)
        let derivatives = ([constant] + ud + [constant]).map { minDerivative + softplus($0) }

        var locations = cumulativeHeights
        locations[bins] += 1e-6
        var bin = locations.filter { y >= $0 }.count - 1
        bin = min(max(bin, 0), bins - 1)

        let xk = cumulativeWidths[bin], wk = cumulativeWidths[bin + 1] - cumulativeWidths[bin]
        let yk = cumulativeHeights[bin], hk = cumulativeHeights[bin + 1] - cumulativeHeights[bin]
        let delta = hk / wk
        let d0 = derivatives[bin], d1 = derivatives[bin + 1]
        let i1 = d0 + d1 - 2 * delta
        let i2 = y - yk
        let i3 = i2 * i1
        let a = hk * (delta - d0) + i3
        let bb = hk * d0 - i3
        let c = -delta * i2
        let discriminant = max(bb * bb - 4 * a * c, 0)
        let root = (2 * c) / (-bb - discriminant.squareRoot())
        return root * wk + xk
    }

    package static func softplus(_ x: Float) -> Float {
        x > 20 ? x : log1pf(expf(x))
    }
}

/// `duration_predictor` (stochastic): log-durations from the text encoding by running its normalising
/// flows backwards from noise (zero noise gives the deterministic durations).
package struct VitsStochasticDurationPredictor: Sendable {
    package let convPre: VitsConv1d, convProj: VitsConv1d
    package let convDDS: VitsDilatedDepthSeparableConv
    package let cond: VitsConv1d?
    /// In the order they run at inference: reversed, without the flow that only matters in training.
    package let inferenceFlows: [any VitsDurationFlow]

    package init(_ w: WeightSource, config: VitsConfig) throws {
        let p = "duration_predictor"
        convPre = try VitsConv1d(w, "\(p).conv_pre")
        convProj = try VitsConv1d(w, "\(p).conv_proj")
        convDDS = try VitsDilatedDepthSeparableConv(w, "\(p).conv_dds", config: config)
        cond = config.speakerEmbeddingSize > 0 ? try VitsConv1d(w, "\(p).cond") : nil
        // transformers runs the flows reversed and drops flows.1 ("a useless vflow"), so flows.1 is
        // never loaded (Piper's export does not even contain it): flows.N … flows.2, then flows.0.
        var flows: [any VitsDurationFlow] = try stride(from: config.durationPredictorNumFlows, through: 2, by: -1).map {
            try VitsConvFlow(w, "\(p).flows.\($0)", config: config)
        }
        flows.append(try VitsElementwiseAffine(w, "\(p).flows.0"))
        inferenceFlows = flows
    }

    /// hidden [1, H, T], noise [1, 2, T] (already scaled) → log-durations [T].
    package func logDurations(_ hidden: Tensor, speaker: Tensor?, noise: Tensor) -> [Float] {
        var x = convPre(hidden)
        if let cond, let speaker { x = x + cond(speaker) }
        x = convProj(convDDS(x))
        var latents = noise
        for flow in inferenceFlows {
            latents = flow.reverse(latents.flippedChannels(), conditioning: x)
        }
        return Array(latents.storage[0..<hidden.shape[2]])
    }
}

/// `duration_predictor` (deterministic, use_stochastic_duration_prediction = false).
package struct VitsDeterministicDurationPredictor: Sendable {
    package let conv1: VitsConv1d, conv2: VitsConv1d, proj: VitsConv1d
    package let norm1: ChannelLayerNorm, norm2: ChannelLayerNorm
    package let cond: VitsConv1d?

    package init(_ w: WeightSource, config: VitsConfig) throws {
        let p = "duration_predictor", k = config.durationPredictorKernelSize
        conv1 = try VitsConv1d(w, "\(p).conv_1", padding: k / 2)
        conv2 = try VitsConv1d(w, "\(p).conv_2", padding: k / 2)
        proj = try VitsConv1d(w, "\(p).proj")
        norm1 = try ChannelLayerNorm(w, "\(p).norm_1", eps: config.layerNormEps)
        norm2 = try ChannelLayerNorm(w, "\(p).norm_2", eps: config.layerNormEps)
        cond = config.speakerEmbeddingSize > 0 ? try VitsConv1d(w, "\(p).cond") : nil
    }

    package func logDurations(_ hidden: Tensor, speaker: Tensor?) -> [Float] {
        var x = hidden
        if let cond, let speaker { x = x + cond(speaker) }
        x = conv1(x)
        x.apply(.relu)
        x = norm1(x)
        x = conv2(x)
        x.apply(.relu)
        x = norm2(x)
        return proj(x).storage
    }
}
