/// Interpolation kernels for `Image.resized`, with Pillow's definitions and supports.
public enum ResizeFilter: Sendable {
    case bilinear
    /// Keys' cubic convolution with a = -0.5, as Pillow's BICUBIC.
    case bicubic

    /// Half-width of the kernel in source pixels when not downscaling.
    var support: Double {
        switch self {
        case .bilinear: 1
        case .bicubic: 2
        }
    }

    func weight(_ distance: Double) -> Double {
        let x = abs(distance)
        switch self {
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}
