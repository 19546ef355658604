/// OpenCV's `cv::Canny(image, threshold1, threshold2, apertureSize: 3, L2gradient)` on 8-bit images, pixel for
/// pixel (`modules/imgproc/src/canny.cpp`): 3×3 Sobel gradients with replicated borders; on colour images each
/// pixel takes the channel of the largest gradient (the first on ties); |dx| + |dy| (or dx² + dy² against
/// squared thresholds); non-maximum suppression across the gradient's direction in four sectors split at
/// tan 22.5° in 15-bit fixed point, strict toward one neighbour and not the other as OpenCV compares;
/// hysteresis: candidates above the low threshold that touch (8-connected) one above the high threshold.
/// The result is one channel, 255 on edges and 0 elsewhere.
public enum CannyEdges {
    public static func edges(_ image: Image, low: Double, high: Double, l2Gradient: Bool = false) -> Image {
        let w = image.width, h = image.height, channels = image.channels == 4 ? 3 : image.channels
        var (lowT, highT) = low > high ? (high, low) : (low, high)
        if l2Gradient {
            (lowT, highT) = (min(32767, lowT), min(32767, highT))
            if lowT > 0 { lowT *= lowT }
            if highT > 0 { highT *= highT }
        }
        // Callers range-check thresholds; NaN and beyond-any-gradient values are pinned here all the same.
        func whole(_ t: Double) -> Int { t.isNaN ? 0 : Int(min(max(t, -1), 1e12).rounded(.down)) }  // checked: pinned to -1 ... 1e12
        let lowI = whole(lowT), highI = whole(highT)

        // Gradients and magnitudes; magnitudes padded by a zero border (the rows and columns OpenCV zeroes).
        let stride = w + 2
        var magnitude = [Int](repeating: 0, count: (h + 2) * stride)
        var gx = [Int](repeating: 0, count: w * h), gy = [Int](repeating: 0, count: w * h)
        let pixels = image.pixels, step = image.channels
        func p(_ y: Int, _ x: Int, _ c: Int) -> Int {
            Int(pixels[(min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)) * step + c])  // checked: a byte
        }
        for y in 0..<h {
            for x in 0..<w {
                var best = -1, bestX = 0, bestY = 0
                for c in 0..<channels {
                    let dx = (p(y - 1, x + 1, c) - p(y - 1, x - 1, c)) + 2 * (p(y, x + 1, c) - p(y, x - 1, c)) + (p(y + 1, x + 1, c) - p(y + 1, x - 1, c))
                    let dy = (p(y + 1, x - 1, c) - p(y - 1, x - 1, c)) + 2 * (p(y + 1, x, c) - p(y - 1, x, c)) + (p(y + 1, x + 1, c) - p(y - 1, x + 1, c))
                    let m = l2Gradient ? dx * dx + dy * dy : abs(dx) + abs(dy)
                    if m > best { (best, bestX, bestY) = (m, dx, dy) }
                }
                magnitude[(y + 1) * stride + x + 1] = best
                gx[y * w + x] = bestX
                gy[y * w + x] = bestY
            }
        }

        // Non-maximum suppression: 0 may be an edge, 1 cannot, 2 is one (the map has a border of 1s).
        let shift = 15, tg22 = Int(0.4142135623730950488016887242097 * Double(1 << shift) + 0.5)
        var map = [UInt8](repeating: 1, count: (h + 2) * stride)
        var stack: [Int] = []
        for y in 0..<h {
            for x in 0..<w {
                let at = (y + 1) * stride + x + 1, m = magnitude[at]
                var local = false
                if m > lowI {
                    let xs = gx[y * w + x], ys = gy[y * w + x]
                    let ax = abs(xs), ay = abs(ys) << shift, tg22x = ax * tg22
                    if ay < tg22x {
                        local = m > magnitude[at - 1] && m >= magnitude[at + 1]
                    } else if ay > tg22x + (ax << (shift + 1)) {
                        local = m > magnitude[at - stride] && m >= magnitude[at + stride]
                    } else {
                        let s = (xs ^ ys) < 0 ? -1 : 1
                        local = m > magnitude[at - stride - s] && m > magnitude[at + stride + s]
                    }
                }
                if !local {
                    map[at] = 1
                } else if m > highI {
                    map[at] = 2
                    stack.append(at)
                } else {
                    map[at] = 0
                }
            }
        }
        // Hysteresis: grow the strong pixels through candidates.
        let neighbours = [-1, 1, -stride - 1, -stride, -stride + 1, stride - 1, stride, stride + 1]
        while let at = stack.popLast() {
            for d in neighbours where map[at + d] == 0 {
                map[at + d] = 2
                stack.append(at + d)
            }
        }
        var out = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w where map[(y + 1) * stride + x + 1] == 2 { out[y * w + x] = 255 }
        }
        return Image(unchecked: w, h, 1, out)
    }
}
