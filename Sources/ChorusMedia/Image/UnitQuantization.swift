/// Model outputs in 0 ... 1 as pixel levels. Clamping with min/max lets NaN through (every comparison
/// with NaN is false), and UInt8(NaN) traps: a model that overflows once would end the process.
extension UInt8 {
    /// `unit` × 255 rounded to nearest, as diffusers' `(image * 255).round()`; values outside
    /// 0 ... 1 clip and NaN is 0.
    public init(unitInterval unit: Float) {
        self = unit >= 0 ? (unit <= 1 ? UInt8((unit * 255).rounded()) : 255) : 0
    }
}

extension UInt16 {
    /// `unit` × 65535 plus a half, truncated; values outside 0 ... 1 clip and NaN is 0.
    public init(unitInterval unit: Float) {
        self = unit >= 0 ? (unit <= 1 ? UInt16(unit * 65535 + 0.5) : 65535) : 0
    }
}
