import ChorusTensor
import Foundation

/// `decoder.resblocks.N`: pairs of (dilated, plain) convolutions with leaky ReLUs and residuals.
package struct HifiGanResidualBlock: Sendable {
    package let convs1: [VitsConv1d]
    /// Empty for type-2 blocks, whose steps are x + conv(leaky(x)).
    package let convs2: [VitsConv1d]
    package let slope: Float

    package init(_ w: WeightSource, _ prefix: String, kernel: Int, dilations: [Int], slope: Float, type: String) throws {
        convs1 = try dilations.enumerated().map { i, d in
            try VitsConv1d(w, "\(prefix).convs1.\(i)", padding: (kernel * d - d) / 2, dilation: d)
        }
        convs2 = type == "2" ? [] : try dilations.indices.map { try VitsConv1d(w, "\(prefix).convs2.\($0)", padding: (kernel - 1) / 2) }
        self.slope = slope
    }

    /// The block as the fused stage kernel takes it.
    package var steps: [ResidualStage.Step] {
        convs1.enumerated().map { i, c1 in
            ResidualStage.Step(first: .init(weight: c1.weight, bias: c1.bias, dilation: c1.dilation, packed: c1.packed),
                               second: i < convs2.count ? .init(weight: convs2[i].weight, bias: convs2[i].bias, dilation: convs2[i].dilation,
                                                                packed: convs2[i].packed) : nil)
        }
    }

    /// Each step is x + conv(leaky(x)) (type 2) or x + conv2(leaky(conv1(leaky(x)))) (type 1); the leaky
    /// ReLUs and the residual add ride along inside the convolutions.
    package func callAsFunction(_ x: Tensor) -> Tensor {
        var x = x
        for (i, c1) in convs1.enumerated() {
            if i < convs2.count {
                let h = c1.fused(x, inputLeakySlope: slope)
                x = convs2[i].fused(h, inputLeakySlope: slope, residual: x)
            } else {
                x = c1.fused(x, inputLeakySlope: slope, residual: x)
            }
        }
        return x
    }
}

/// `decoder`: HiFi-GAN (Kong et al. 2020), spectrogram latents [1, F, frames] → waveform.
package struct VitsHifiGan: Sendable {
    package struct Upsampler: Sendable {
        package let weight: Tensor, bias: Tensor?
        package let stride: Int, padding: Int
        /// The weight split into its phases for the direct kernels, where they run.
        package let packed: PackedConvTranspose1dWeight?

        package init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int) {
            (self.weight, self.bias, self.stride, self.padding) = (weight, bias, stride, padding)
            packed = PackedConvTranspose1dWeight(weight, stride: stride, padding: padding)
        }

        package func callAsFunction(_ x: Tensor) -> Tensor {
            if let packed, x.shape[0] == 1 { return Convolution.convTranspose1d(x, packed: packed, bias: bias) }
            return Convolution.convTranspose1d(x, weight: weight, bias: bias, stride: stride, padding: padding)
        }
    }

    package let convPre: VitsConv1d
    package let upsampler: [Upsampler]
    package let resblocks: [HifiGanResidualBlock]
    /// Each upsampling stage's blocks fused into one tiled kernel, where the CPU and the stage's width allow.
    package let stages: [ResidualStage?]
    package let convPost: VitsConv1d
    package let cond: VitsConv1d?
    package let kernels: Int
    package let slope: Float

    package init(_ w: WeightSource, config: VitsConfig) throws {
        convPre = try VitsConv1d(w, "decoder.conv_pre", padding: 3)
        upsampler = try zip(config.upsampleRates, config.upsampleKernelSizes).enumerated().map { i, pair in
            Upsampler(weight: try VitsConv1d.weight(w, "decoder.upsampler.\(i)"), bias: try w.tensor("decoder.upsampler.\(i).bias"),
                      stride: pair.0, padding: (pair.1 - pair.0) / 2)
        }
        var blocks: [HifiGanResidualBlock] = []
        for i in 0..<config.upsampleRates.count {
            for (j, (kernel, dilations)) in zip(config.resblockKernelSizes, config.resblockDilationSizes).enumerated() {
                blocks.append(try HifiGanResidualBlock(w, "decoder.resblocks.\(i * config.resblockKernelSizes.count + j)",
                                                       kernel: kernel, dilations: dilations, slope: config.leakyReluSlope, type: config.resblock))
            }
        }
        resblocks = blocks
        let perStage = config.resblockKernelSizes.count
        stages = (0..<config.upsampleRates.count).map { i in
            ResidualStage(blocks: blocks[(i * perStage)..<((i + 1) * perStage)].map(\.steps), slope: config.leakyReluSlope)
        }
        convPost = try VitsConv1d(w, "decoder.conv_post", bias: false, padding: 3)
        cond = config.speakerEmbeddingSize > 0 ? try VitsConv1d(w, "decoder.cond") : nil
        kernels = config.resblockKernelSizes.count
        slope = config.leakyReluSlope
    }

    package func callAsFunction(_ spectrogram: Tensor, speaker: Tensor?) -> [Float] {
        var x = convPre(spectrogram)
        if let cond, let speaker { x = x + cond(speaker) }
        for (i, up) in upsampler.enumerated() {
            x.leakyReLU(slope: slope)
            x = up(x)
            if let stage = stages[i] {
                x = stage(x)
                continue
            }
            var sum = resblocks[i * kernels](x)
            for j in 1..<kernels { sum.add(resblocks[i * kernels + j](x)) }
            sum.scale(by: 1 / Float(kernels))
            x = sum
        }
        // The last leaky ReLU uses PyTorch's default slope (0.01), not the config's.
        var y = convPost.fused(x, inputLeakySlope: 0.01)
        y.apply(.tanh)
        return y.storage
    }
}
