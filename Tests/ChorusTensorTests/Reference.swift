import ChorusTensor
import Foundation

/// Slow, obviously correct versions of the kernels, in Double, for the tests to compare against.
enum Reference {
    static func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { i -> Float in
            let x = Double(i * 7 + seed * 13) * 0.37
            return Float(sin(x) * 0.9 + cos(x * 0.31) * 0.3)
        }
    }

    static func tensor(_ shape: [Int], seed: Int) -> Tensor {
        Tensor(shape: shape, storage: values(shape.reduce(1, *), seed: seed))
    }

    static func conv2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        var out = [Float](repeating: 0, count: n * cout * ho * wo)
        let perGroupOut = cout / groups
        for b in 0..<n { for o in 0..<cout { for y in 0..<ho { for xo in 0..<wo {
            let g = o / perGroupOut
            var sum = Double(bias?.storage[o] ?? 0)
            for c in 0..<cg { for i in 0..<kh { for j in 0..<kw {
                let iy = y * stride.0 - padding.0 + i * dilation.0, ix = xo * stride.1 - padding.1 + j * dilation.1
                guard iy >= 0 && iy < h && ix >= 0 && ix < wd else { continue }
                sum += Double(x.storage[((b * cin + g * cg + c) * h + iy) * wd + ix]) * Double(w.storage[((o * cg + c) * kh + i) * kw + j])
            } } }
            out[((b * cout + o) * ho + y) * wo + xo] = Float(sum)
        } } } }
        _ = cin
        return Tensor(shape: [n, cout, ho, wo], storage: out)
    }

    /// Transposed convolution as the scatter PyTorch describes.
    static func convTranspose2d(_ x: Tensor, _ w: Tensor, stride: (Int, Int), padding: (Int, Int), outputPadding: (Int, Int), groups: Int) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (coutg, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let cout = coutg * groups, cing = cin / groups
        let ho = (h - 1) * stride.0 - 2 * padding.0 + kh + outputPadding.0
        let wo = (wd - 1) * stride.1 - 2 * padding.1 + kw + outputPadding.1
        var out = [Double](repeating: 0, count: n * cout * ho * wo)
        for b in 0..<n { for c in 0..<cin { for y in 0..<h { for xi in 0..<wd {
            let g = c / cing
            for o in 0..<coutg { for i in 0..<kh { for j in 0..<kw {
                let oy = y * stride.0 - padding.0 + i, ox = xi * stride.1 - padding.1 + j
                guard oy >= 0 && oy < ho && ox >= 0 && ox < wo else { continue }
                out[((b * cout + g * coutg + o) * ho + oy) * wo + ox] += Double(x.storage[((b * cin + c) * h + y) * wd + xi]) * Double(w.storage[((c * coutg + o) * kh + i) * kw + j])
            } } }
        } } } }
        return Tensor(shape: [n, cout, ho, wo], storage: out.map(Float.init))
    }

    /// Attention on [B, T, H·D] with explicit loops.
    static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, causal: Bool, mask: Tensor?) -> Tensor {
        let (b, tq, width) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1], d = width / heads
        var out = [Float](repeating: 0, count: q.count)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<tq {
            var scores = [Double](repeating: 0, count: tk)
            for j in 0..<tk {
                var s = 0.0
                for e in 0..<d { s += Double(q.storage[(bi * tq + i) * width + h * d + e]) * Double(k.storage[(bi * tk + j) * width + h * d + e]) }
                scores[j] = s / Double(d).squareRoot() + Double(mask?.storage[i * tk + j] ?? 0)
                if causal && j > i + (tk - tq) { scores[j] = -.infinity }
            }
            let top = scores.max()!
            let exps = scores.map { exp($0 - top) }
            let total = exps.reduce(0, +)
            for e in 0..<d {
                var acc = 0.0
                for j in 0..<tk { acc += exps[j] / total * Double(v.storage[(bi * tk + j) * width + h * d + e]) }
                out[(bi * tq + i) * width + h * d + e] = Float(acc)
            }
        } } }
        return Tensor(shape: q.shape, storage: out)
    }
}

extension Tensor {
    func isClose(to other: Tensor, atol: Float = 1e-4, rtol: Float = 1e-4) -> Bool {
        guard shape == other.shape else { return false }
        return zip(storage, other.storage).allSatisfy { abs($0 - $1) <= atol + rtol * abs($1) }
    }
}
