/// Maxima and sums over a row, eight lanes at a time. The compiler never vectorises a floating-point
/// reduction by itself (it may not reassociate the additions), so a plain loop runs one element per
/// add latency; these keep eight partial results and combine them at the end.
enum RowReduction {
    /// The largest of p[0..<n] (−∞ for an empty row).
    @inline(__always)
    static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            lanes.replace(with: v, where: v .> lanes)
            i += 8
        }
        var top = lanes.max()
        while i < n { top = Swift.max(top, p[i]); i += 1 }
        return top
    }

    /// Σ (p[i] − shift) over p[0..<n], or Σ (p[i] − shift)² when `squared`. Lanes add in float within
    /// blocks of 512 elements and the blocks add in Double, so a row of a million values (group norm
    /// over a 512×512 map) keeps float32 precision.
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int, minus shift: Float = 0, squared: Bool = false) -> Double {
        let raw = UnsafeRawPointer(p)
        let s = SIMD8<Float>(repeating: shift)
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            var lanes = SIMD8<Float>(repeating: 0)
            let end = Swift.min(n - 7, i + 512)
            while i < end {
                let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - s
                lanes += squared ? d * d : d
                i += 8
            }
            total += Double(lanes.sum())
        }
        while i < n {
            let d = p[i] - shift
            total += Double(squared ? d * d : d)
            i += 1
        }
        return total
    }
}
