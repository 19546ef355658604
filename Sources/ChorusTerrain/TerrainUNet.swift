import ChorusTensor
import Foundation

/// The terrain consistency model's network: an OpenAI guided-diffusion UNetModel (model channels 32,
/// multipliers 1,1,2,3,4, four ResBlocks per level with scale-shift norm, attention at 32², 16², 8²,
/// ResBlock up/down sampling) inside EDM/consistency preconditioning. Types mirror the ONNX
/// initializers' module names (`network.input_blocks.11.1.qkv`); the exporter renamed the GroupNorm
/// scales and shifts to anonymous values, which are named here after the convolution each norm feeds.
/// Spec and reference: scripts/fixtures/terrain_unet_reference.py.
package struct TerrainUNet: Sendable {
    package struct GroupNorm: Sendable {
        package let weight: Tensor, bias: Tensor
        package func callAsFunction(_ x: Tensor, scaleShift: Tensor? = nil, activation: Activation? = nil) -> Tensor {
            x.groupNorm(groups: 32, weight: weight, bias: bias, eps: 1e-5, scaleShift: scaleShift, activation: activation)
        }
    }

    /// Weights transformed for the direct and Winograd kernels once at load: the model is small (32 to 128
    /// channels), and each forward pass runs every conv.
    package struct Conv: Sendable {
        package let weight: Tensor, bias: Tensor?
        package let padding: Int
        package let packed: PackedConv2dWeight?, winograd: WinogradConv2dWeight?

        package init(weight: Tensor, bias: Tensor?, padding: Int = 0) {
            (self.weight, self.bias, self.padding) = (weight, bias, padding)
            (packed, winograd) = (PackedConv2dWeight(weight), WinogradConv2dWeight(weight))
        }

        package func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
            Convolution.conv2d(x, weight: weight, bias: bias, options: Conv2DOptions(padding: (padding, padding)),
                               packed: packed, winograd: winograd, residual: residual)
        }
    }

    package enum Resample: Sendable { case none, down, up }

    package struct ResBlock: Sendable {
        package let inNorm: GroupNorm, inConv: Conv
        package let embLinear: Linear
        package let outNorm: GroupNorm, outConv: Conv
        package let skip: Conv?
        package let resample: Resample

        /// x + conv(SiLU(GN(conv(SiLU(GN(x))))·(1+scale) + shift)), with x and h resampled together.
        package func callAsFunction(_ x: Tensor, embedding: Tensor) -> Tensor {
            var h = inNorm(x, activation: .silu)
            var x = x
            switch resample {
            case .down: h = h.averagePooled2x2(); x = x.averagePooled2x2()
            case .up: h = h.upsampleNearest(factor: 2); x = x.upsampleNearest(factor: 2)
            case .none: break
            }
            // The embedding's [B, 2C] scale and shift fold into the second norm, with the SiLU after it.
            h = outNorm(inConv(h), scaleShift: embLinear(embedding), activation: .silu)
            return outConv(h, residual: skip.map { $0(x) } ?? x)
        }
    }

    /// QKVAttention (the new head order): q, k, v are channel thirds, 32 channels per head.
    package struct AttentionBlock: Sendable {
        package let norm: GroupNorm, qkv: Conv, projOut: Conv

        package func callAsFunction(_ x: Tensor) -> Tensor {
            let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let t = height * width
            let parts = qkv(norm(x)).reshaped([batch, 3 * channels, t])
            // [B, C, T] thirds → [B, T, C] for attention over positions (heads are channel slices of 32).
            func positions(_ third: Int) -> Tensor {
                parts.slice(axis: 1, (third * channels)..<((third + 1) * channels)).permuted([0, 2, 1])
            }
            let a = Attention.attend(query: positions(0), key: positions(1), value: positions(2), heads: channels / 32,
                                     scale: 1 / Float(32).squareRoot())
            return x + projOut(a.permuted([0, 2, 1]).reshaped([batch, channels, height, width]))
        }
    }

    package enum Layer: Sendable {
        case conv(Conv)
        case res(ResBlock)
        case attention(AttentionBlock)
    }

    package let timeEmbed: (Linear, Linear)
    package let labelEmb: (Linear, Linear)
    package let inputBlocks: [[Layer]]
    package let middleBlock: [Layer]
    package let outputBlocks: [[Layer]]
    package let outNorm: GroupNorm, outConv: Conv
    package let frequencies: [Float]

    package init(onnx path: String) throws {
        let model = try ONNXModel(path: path)
        let w = RenamedWeights(model, mapping: try Self.names(model))
        func linear(_ p: String) throws -> Linear { try Linear(w, p) }
        func conv(_ p: String, padding: Int) throws -> Conv {
            Conv(weight: try w.tensor("\(p).weight"), bias: try w.tensor("\(p).bias"), padding: padding)
        }
        func norm(_ p: String) throws -> GroupNorm {
            GroupNorm(weight: try w.tensor("\(p).weight").reshaped([-1]), bias: try w.tensor("\(p).bias").reshaped([-1]))
        }
        func has(_ name: String) -> Bool { (try? w.tensor(name)) != nil }
        func block(_ p: String) throws -> [Layer] {
            var layers: [Layer] = []
            var i = 0
            while has("\(p).\(i).weight") || has("\(p).\(i).in_layers.2.weight") || has("\(p).\(i).qkv.weight") {
                let q = "\(p).\(i)"
                if has("\(q).qkv.weight") {
                    layers.append(.attention(AttentionBlock(norm: try norm("\(q).norm"), qkv: try conv("\(q).qkv", padding: 0),
                                                            projOut: try conv("\(q).proj_out", padding: 0))))
                } else if has("\(q).in_layers.2.weight") {
                    let resample: Resample = Self.downBlocks.contains(q) ? .down : Self.upBlocks.contains(q) ? .up : .none
                    layers.append(.res(ResBlock(
                        inNorm: try norm("\(q).in_layers.0"), inConv: try conv("\(q).in_layers.2", padding: 1),
                        embLinear: try linear("\(q).emb_layers.1"),
                        outNorm: try norm("\(q).out_layers.0"), outConv: try conv("\(q).out_layers.3", padding: 1),
                        skip: has("\(q).skip_connection.weight") ? try conv("\(q).skip_connection", padding: 0) : nil,
                        resample: resample)))
                } else {
                    layers.append(.conv(try conv(q, padding: 1)))
                }
                i += 1
            }
            return layers
        }
        timeEmbed = (try linear("network.time_embed.0"), try linear("network.time_embed.2"))
        labelEmb = (try linear("network.label_emb.0"), try linear("network.label_emb.2"))
        inputBlocks = try (0..<25).map { try block("network.input_blocks.\($0)") }
        middleBlock = try block("network.middle_block")
        outputBlocks = try (0..<25).map { try block("network.output_blocks.\($0)") }
        outNorm = try norm("network.out.0")
        outConv = try conv("network.out.2", padding: 1)
        frequencies = (0..<16).map { expf(-logf(10000) * Float($0) / 16) }
        guard inputBlocks.allSatisfy({ !$0.isEmpty }), outputBlocks.allSatisfy({ !$0.isEmpty }), middleBlock.count == 3 else {
            throw WeightFileError(path, "does not have the terrain UNet's 25 input blocks, middle block and 25 output blocks")
        }
    }

    /// Where the ResBlocks resample (guided-diffusion's resblock_updown).
    package static let downBlocks: Set<String> = ["network.input_blocks.5.0", "network.input_blocks.10.0", "network.input_blocks.15.0", "network.input_blocks.20.0"]
    package static let upBlocks: Set<String> = ["network.output_blocks.4.2", "network.output_blocks.9.2", "network.output_blocks.14.2", "network.output_blocks.19.1"]

    /// Initializer names: the network's own, plus the GroupNorm scales and shifts the exporter renamed,
    /// found by following each InstanceNormalization → Reshape → Mul(γ) → Add(β) to the convolution it feeds.
    package static func names(_ model: ONNXModel) throws -> [String: String] {
        var mapping: [String: String] = [:]
        for name in model.initializers.keys where name.hasPrefix("network.") { mapping[name] = name }
        func firstConv(_ value: String, depth: Int) -> String? {
            let consumers = model.consumers(of: value)
            if let conv = consumers.first(where: { $0.node.opType == "Conv" && $0.node.inputs[1].hasPrefix("network.") }) {
                return conv.node.inputs[1]
            }
            guard depth < 6 else { return nil }
            for (node, _) in consumers where ["Sigmoid", "Mul", "Add", "AveragePool", "Resize"].contains(node.opType) {
                if let found = firstConv(node.outputs[0], depth: depth + 1) { return found }
            }
            return nil
        }
        for node in model.nodes where node.opType == "InstanceNormalization" {
            guard let reshape = model.consumers(of: node.outputs[0]).first?.node, reshape.opType == "Reshape",
                  let mul = model.consumers(of: reshape.outputs[0]).first?.node, mul.opType == "Mul",
                  let add = model.consumers(of: mul.outputs[0]).first?.node, add.opType == "Add",
                  let conv = firstConv(add.outputs[0], depth: 0) else {
                throw WeightFileError(model.path, "GroupNorm at node \(node.name) is not followed by scale, shift and a convolution")
            }
            let base: String
            if conv.hasSuffix(".in_layers.2.weight") { base = String(conv.dropLast("in_layers.2.weight".count)) + "in_layers.0" }
            else if conv.hasSuffix(".out_layers.3.weight") { base = String(conv.dropLast("out_layers.3.weight".count)) + "out_layers.0" }
            else if conv.hasSuffix(".qkv.weight") { base = String(conv.dropLast("qkv.weight".count)) + "norm" }
            else if conv == "network.out.2.weight" { base = "network.out.0" }
            else { throw WeightFileError(model.path, "GroupNorm at node \(node.name) feeds \(conv), which no norm of the UNet feeds") }
            mapping["\(base).weight"] = mul.inputs[1]
            mapping["\(base).bias"] = add.inputs[1]
        }
        return mapping
    }

    /// F(c_in·x, 250·ln σ, difficulty) combined as c_skip·x + c_out·F, clipped to [−1, 1].
    package func callAsFunction(_ noisy: Tensor, sigma: [Float], difficulty: [Float]) -> Tensor {
        let batch = noisy.shape[0], pixels = noisy.count / batch
        var scaled = noisy
        for b in 0..<batch {
            let cIn = 1 / (sigma[b] * sigma[b] + 0.25).squareRoot()
            for i in 0..<pixels { scaled.storage[b * pixels + i] *= cIn }
        }
        let raw = network(scaled, times: sigma.map { 250 * logf($0) }, difficulty: difficulty)
        var out = noisy
        for b in 0..<batch {
            let s = sigma[b]
            let cSkip = 0.25 / ((s - 0.002) * (s - 0.002) + 0.25)
            let cOut = (s - 0.002) * 0.5 / (s * s + 0.25).squareRoot()
            for i in 0..<pixels {
                let v = cOut * raw.storage[b * pixels + i] + cSkip * noisy.storage[b * pixels + i]
                out.storage[b * pixels + i] = min(max(v, -1), 1)
            }
        }
        return out
    }

    /// The UNet itself: x [B, 1, 128, 128] → [B, 1, 128, 128].
    package func network(_ x: Tensor, times: [Float], difficulty: [Float]) -> Tensor {
        let batch = x.shape[0]
        var sinusoid = [Float](repeating: 0, count: batch * 32)
        for b in 0..<batch {
            for i in 0..<16 {
                let angle = times[b] * frequencies[i]
                sinusoid[b * 32 + i] = cosf(angle)
                sinusoid[b * 32 + 16 + i] = sinf(angle)
            }
        }
        var t = timeEmbed.0(Tensor(shape: [batch, 32], storage: sinusoid))
        t.apply(.silu)
        var d = labelEmb.0(Tensor(shape: [batch, 1], storage: difficulty))
        d.apply(.silu)
        var embedding = timeEmbed.1(t) + labelEmb.1(d)
        embedding.apply(.silu)  // every ResBlock's emb_layers starts with SiLU

        func run(_ layers: [Layer], _ h: Tensor) -> Tensor {
            var h = h
            for layer in layers {
                switch layer {
                case .conv(let conv): h = conv(h)
                case .res(let block): h = block(h, embedding: embedding)
                case .attention(let block): h = block(h)
                }
            }
            return h
        }
        var skips: [Tensor] = []
        var h = x
        for block in inputBlocks {
            h = run(block, h)
            skips.append(h)
        }
        h = run(middleBlock, h)
        for block in outputBlocks {
            h = run(block, Tensor.concatenate([h, skips.removeLast()], axis: 1))
        }
        h = outNorm(h, activation: .silu)
        return outConv(h)
    }
}

extension Tensor {
    /// 2×2 average pooling with stride 2 of [N, C, H, W] (H and W even).
    package func averagePooled2x2() -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (ho, wo) = (h / 2, w / 2)
        var out = [Float](repeating: 0, count: n * c * ho * wo)
        for plane in 0..<(n * c) {
            for y in 0..<ho {
                for x in 0..<wo {
                    let i = plane * h * w + 2 * y * w + 2 * x
                    out[plane * ho * wo + y * wo + x] = (storage[i] + storage[i + 1] + storage[i + w] + storage[i + w + 1]) * 0.25
                }
            }
        }
        return Tensor(shape: [n, c, ho, wo], storage: out)
    }
}
