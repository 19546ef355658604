import ChorusTensor
import Testing

@Suite struct ShapeTests {
    let x = Tensor(shape: [2, 3, 4], storage: (0..<24).map(Float.init))

    @Test func permuteMovesEveryElementWhereItBelongs() {
        let p = x.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            #expect(p.storage[(k * 2 + i) * 3 + j] == x.storage[(i * 3 + j) * 4 + k])
        } } }
        #expect(p.permuted([1, 2, 0]) == x)
    }

    @Test func concatSliceAndSplitAreInverses() {
        let parts = x.split(axis: 1, sizes: [1, 2])
        #expect(parts.map(\.shape) == [[2, 1, 4], [2, 2, 4]])
        #expect(parts[0].storage == [0, 1, 2, 3, 12, 13, 14, 15])
        #expect(Tensor.concatenate(parts, axis: 1) == x)
        #expect(x.slice(axis: 2, 1..<3).storage.prefix(4) == [1, 2, 5, 6])
        #expect(Tensor.concatenate([x, x], axis: 0).shape == [4, 3, 4])
    }

    @Test func embeddingPicksRows() {
        let table = Tensor(shape: [4, 2], storage: [0, 1, 10, 11, 20, 21, 30, 31])
        #expect(table.embedding([3, 0, 3]).storage == [30, 31, 0, 1, 30, 31])
    }

    @Test func upsamplingMatchesPyTorch() {
        let image = Tensor(shape: [1, 1, 2, 2], storage: [1, 2, 3, 4])
        #expect(image.upsampleNearest(factor: 2).storage == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // torch.nn.functional.interpolate(t, size=(4, 4), mode="bilinear", align_corners=False)
        let expected: [Float] = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]
        #expect(image.upsampleBilinear(height: 4, width: 4).storage == expected)
    }
}
