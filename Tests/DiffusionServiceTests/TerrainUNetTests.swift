import ChorusMedia
import ChorusTensor
import ChorusTestSupport
import Foundation
@testable import DiffusionService
import Testing
import ChorusTerrain

/// The real terrain consistency UNet (scripts/fetch-models) against ONNX Runtime's outputs in ../shared/real.
@Suite(.serialized) struct TerrainUNetTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.resourcePath! + "/Fixtures/terrain.safetensors")
    static let onnx = "terrain/terrain_consistency_unet_difficulty100.onnx"

    @Test(arguments: [("sigma80_d50", Float(6e-5)), ("img2img_sigma2_d50", Float(4e-5))])
    func matchesOnnxRuntime(_ name: String, _ atol: Float) throws {
        let unet = try TerrainUNet(onnx: try RealModels.path(Self.onnx))
        let out = unet(try Self.reference.tensor("\(name).noisy"), sigma: try Self.reference.tensor("\(name).sigma").storage,
                       difficulty: try Self.reference.tensor("\(name).difficulty").storage)
        let expected = try Self.reference.tensor("\(name).denoised")
        let bad = (0..<out.count).filter { abs(out.storage[$0] - expected.storage[$0]) > atol + 1e-4 * abs(expected.storage[$0]) }
        #expect(out.shape == [1, 1, 128, 128] && bad.isEmpty, "\(name): \(bad.count) values off, max |Δ| \(out.maxAbsDifference(expected).value)")
    }

    @Test func generationIsSeededAndImg2imgStaysNearItsInput() throws {
        let engine = try TerrainEngine(name: "terrain", onnx: try RealModels.path(Self.onnx))
        let a = engine.generate(count: 2, difficulty: 30, seed: 11)
        let b = engine.generate(count: 2, difficulty: 30, seed: 11)
        #expect(a == b && a[0] != a[1])
        #expect(a[0].allSatisfy { (-1...1).contains($0) })
        // Low strength keeps the terrain; full strength forgets it.
        let init0 = a[0]
        let gentle = engine.generate(count: 1, difficulty: 30, seed: 5, initial: init0, strength: 0.2)[0]
        let strong = engine.generate(count: 1, difficulty: 30, seed: 5, initial: init0, strength: 1)[0]
        func distance(_ x: [Float]) -> Float { zip(x, init0).map { abs($0 - $1) }.reduce(0, +) / Float(x.count) }
        #expect(distance(gentle) < 0.05 && distance(strong) > 2 * distance(gentle), "\(distance(gentle)) vs \(distance(strong))")
        // The 16-bit PNG round-trips the heights to within a level.
        let (png16, preview) = try TerrainEngine.encode(init0)
        let back = try TerrainEngine.heights(from: png16)
        #expect(zip(back, init0).allSatisfy { abs($0 - min(max($1, -1), 1)) < 4e-5 })
        #expect(try ImageCodec.decode(preview).channels == 1)
        #expect(abs(TerrainEngine.sigma(strength: 1) - 80) < 1e-3 && abs(TerrainEngine.sigma(strength: 0) - 0.002) < 1e-6)
    }
}
