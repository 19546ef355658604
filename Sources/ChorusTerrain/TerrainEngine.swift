import ChorusMedia
import ChorusTensor
import Foundation

/// The default diffusion model: a consistency UNet for 128×128 terrain heightfields
/// (adaptive-terrain-diffusion). One network evaluation denoises from any noise level, so generation is
/// one step from pure noise (sigma 80) and img2img is one step from the init image plus noise at
/// sigma = 0.002·(80/0.002)^strength. Heights live in [−1, 1]; outputs are 16-bit grayscale PNGs.
package final class TerrainEngine: Sendable {
    package static let size = 128
    package static let sigmaMin: Float = 0.002, sigmaMax: Float = 80

    package let name: String
    package let network: TerrainUNet

    package init(name: String, onnx path: String) throws {
        self.name = name
        network = try TerrainUNet(onnx: path)
    }

    /// The noise level img2img starts from for a strength in (0, 1].
    package static func sigma(strength: Float) -> Float {
        sigmaMin * powf(sigmaMax / sigmaMin, strength)
    }

    /// Denoised heightfields [count, 128, 128] in [−1, 1]. `initial` (heights in [−1, 1]) with its
    /// `strength` makes it img2img; without it generation starts from noise at sigma 80.
    package func generate(count: Int, difficulty: Int, seed: UInt64, initial: [Float]? = nil, strength: Float = 1) -> [[Float]] {
        let pixels = Self.size * Self.size
        let sigma = initial == nil ? Self.sigmaMax : Self.sigma(strength: strength)
        var random = SplitMix64(seed: seed)
        var noisy = [Float](repeating: 0, count: count * pixels)
        for b in 0..<count {
            let noise = random.normals(pixels)
            for i in 0..<pixels { noisy[b * pixels + i] = (initial?[i] ?? 0) + sigma * noise[i] }
        }
        let output = network(Tensor(shape: [count, 1, Self.size, Self.size], storage: noisy),
                             sigma: [Float](repeating: sigma, count: count),
                             difficulty: [Float](repeating: Float(difficulty - 1) / 99, count: count))
        return (0..<count).map { Array(output.storage[($0 * pixels)..<(($0 + 1) * pixels)]) }
    }

    /// [−1, 1] heights → a 16-bit PNG (full range) and an 8-bit preview.
    package static func encode(_ heights: [Float]) throws -> (png16: [UInt8], preview: [UInt8]) {
        let levels: [UInt16] = heights.map { (height: Float) -> UInt16 in
            UInt16(unitInterval: (height + 1) / 2)
        }
        let png16 = try ImageCodec.encodePNG(Image16(width: size, height: size, pixels: levels))
        let gray: [UInt8] = levels.map { UInt8($0 >> 8) }
        let preview = try ImageCodec.encodePNG(try Image(width: size, height: size, channels: 1, pixels: gray))
        return (png16, preview)
    }

    /// A PNG/JPEG heightfield → heights in [−1, 1] (16-bit gray keeps every bit).
    package static func heights(from bytes: [UInt8]) throws -> [Float] {
        let image = try ImageCodec.decodeGray16(bytes)
        guard image.width == size && image.height == size else {
            throw MediaError.invalidImage("the terrain model works on \(size)×\(size) heightfields, the init image is \(image.width)×\(image.height)")
        }
        return image.pixels.map { Float($0) / 65535 * 2 - 1 }
    }
}
