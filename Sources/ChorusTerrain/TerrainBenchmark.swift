import ChorusTensor
import Foundation

/// What `chorus bench diffusion` times on our side: one evaluation of the terrain consistency UNet.
public struct TerrainBenchmark {
    package let unet: TerrainUNet

    public init(onnx: String) throws {
        unet = try TerrainUNet(onnx: onnx)
    }

    private func noise(_ count: Int) -> [Float] {
        var random = SplitMix64(seed: 1)
        return random.normals(count).map { $0 * 80 }
    }

    /// Median seconds of one network evaluation at sigma 80 for `batch` heightfields.
    public func seconds(batch: Int) -> Double {
        let noisy = Tensor(shape: [batch, 1, 128, 128], storage: noise(batch * 128 * 128))
        let sigma = [Float](repeating: 80, count: batch), difficulty = [Float](repeating: 0.5, count: batch)
        _ = unet(noisy, sigma: sigma, difficulty: difficulty)
        var times: [Double] = []
        let started = Date()
        while times.count < 3 || (Date().timeIntervalSince(started) < 4 && times.count < 30) {
            let t0 = Date()
            _ = unet(noisy, sigma: sigma, difficulty: difficulty)
            times.append(Date().timeIntervalSince(t0))
        }
        return times.sorted()[times.count / 2]
    }
}
