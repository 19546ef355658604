import ChorusTensor
import Testing

/// conv2d's fast paths against the definition, with each block this CPU runs: Winograd F(4×4, 3×3) for
/// 3×3 kernels over rows of 16 outputs or more, the direct kernels for the rest up to 128 input channels.
@Suite struct Conv2dKernelTests {
    static let blocks = DirectBlock.allCases.filter(\.supported)

    /// (batch, cin, cout, height, width, padding): whole tiles and 8-tile groups; partial tiles, partial groups
    /// and a last block of few channels; no padding; more input channels than one chunk of columns holds;
    /// padding 2 with rows that cross several groups and both image edges.
    @Test(arguments: [(1, 32, 32, 32, 32, 1), (2, 5, 13, 17, 35, 1), (1, 3, 7, 18, 18, 0), (1, 200, 20, 16, 16, 1), (1, 8, 6, 21, 70, 2)],
          blocks)
    func winogradMatchesTheDefinition(shape: (Int, Int, Int, Int, Int, Int), block: DirectBlock) throws {
        let (n, cin, cout, h, w, padding) = shape
        let x = Reference.tensor([n, cin, h, w], seed: 40), weight = Reference.tensor([cout, cin, 3, 3], seed: 41)
        let bias = Reference.tensor([cout], seed: 42)
        let winograd = try #require(WinogradConv2dWeight(weight, block: block))
        let y = Convolution.conv2d(x, weight: weight, bias: bias, options: Conv2DOptions(padding: (padding, padding)), winograd: winograd)
        let expected = Reference.conv2d(x, weight, bias, stride: (1, 1), padding: (padding, padding), dilation: (1, 1), groups: 1)
        // F(4×4, 3×3) rounds more than a direct sum: its transforms scale by up to 8 and 1/24.
        #expect(y.isClose(to: expected, atol: 2e-4, rtol: 2e-4))
        // Without a kept weight (transformed on the call where that pays, from 1024 positions, else the
        // direct kernels), and with a residual added in.
        let residual = Reference.tensor(expected.shape, seed: 43)
        #expect(Convolution.conv2d(x, weight: weight, bias: bias, options: Conv2DOptions(padding: (padding, padding)), residual: residual)
            .isClose(to: expected + residual, atol: 2e-4, rtol: 2e-4))
    }

    /// Maps narrower than a block (flattened rows), partial blocks of channels, kernels other than 3×3.
    @Test(arguments: [(1, 16, 13, 8, 8, 3, 3, 1), (2, 7, 9, 5, 11, 5, 5, 2), (1, 24, 16, 12, 40, 1, 3, 0), (1, 128, 20, 9, 9, 3, 3, 1)],
          blocks)
    func directConv2dMatchesTheDefinition(shape: (Int, Int, Int, Int, Int, Int, Int, Int), block: DirectBlock) throws {
        let (n, cin, cout, h, w, kh, kw, padding) = shape
        let x = Reference.tensor([n, cin, h, w], seed: 50), weight = Reference.tensor([cout, cin, kh, kw], seed: 51)
        let bias = Reference.tensor([cout], seed: 52)
        let packed = try #require(PackedConv2dWeight(weight, block: block))
        let options = Conv2DOptions(padding: (padding, padding))
        let expected = Reference.conv2d(x, weight, bias, stride: (1, 1), padding: (padding, padding), dilation: (1, 1), groups: 1)
        #expect(Convolution.conv2d(x, weight: weight, bias: bias, options: options, packed: packed).isClose(to: expected))
        let residual = Reference.tensor(expected.shape, seed: 53)
        #expect(Convolution.conv2d(x, weight: weight, bias: bias, options: options, packed: packed, residual: residual)
            .isClose(to: expected + residual))
    }
}
