import ChorusTensor
import Foundation

/// Resizing exactly as Pillow's `Image.resize` does it (libImaging/Resample.c): a separable convolution
/// whose support widens with the downscale factor (antialiasing), 22-bit fixed-point coefficients, and a
/// round-and-clip to 8 bits after the horizontal pass and after the vertical one. Matching PIL bit for bit
/// is what lets CLIP's preprocessing agree with transformers'.
public enum ResizeFilter: Sendable {
    case bilinear, bicubic

    var support: Double { self == .bilinear ? 1 : 2 }

    func weight(_ x: Double) -> Double {
        let x = abs(x)
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

extension Image {
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResizeFilter = .bicubic) -> Image {
        var current = self
        if newWidth != width { current = current.resampledHorizontally(to: newWidth, filter: filter) }
        if newHeight != height { current = current.transposedRows().resampledHorizontally(to: newHeight, filter: filter).transposedRows() }
        return current
    }

    /// Rows ↔ columns, so the vertical pass can reuse the horizontal one.
    private func transposedRows() -> Image {
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { out[(x * height + y) * channels + c] = pixels[(y * width + x) * channels + c] }
            }
        }
        return Image(width: height, height: width, channels: channels, pixels: out)
    }

    private func resampledHorizontally(to outSize: Int, filter: ResizeFilter) -> Image {
        let (bounds, coefficients, taps) = Self.coefficients(inSize: width, outSize: outSize, filter: filter)
        var out = [UInt8](repeating: 0, count: outSize * height * channels)
        let precision = 22
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * width * channels
                    for x in 0..<outSize {
                        let (start, count) = bounds[x]
                        for c in 0..<channels {
                            var sum = 1 << (precision - 1)
                            for k in 0..<count {
                                sum += Int(src[row + (start + k) * channels + c]) * coefficients[x * taps + k]
                            }
                            dst[(y * outSize + x) * channels + c] = UInt8(clamping: sum >> precision)
                        }
                    }
                }
            }
        }
        return Image(width: outSize, height: height, channels: channels, pixels: out)
    }

    /// Per output pixel: the first input pixel, how many contribute, and their fixed-point weights.
    private static func coefficients(inSize: Int, outSize: Int, filter: ResizeFilter) -> ([(Int, Int)], [Int], Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var fixed = [Int](repeating: 0, count: outSize * taps)
        for x in 0..<outSize {
            let center = (Double(x) + 0.5) * scale
            let start = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inSize)
            var weights = (start..<end).map { filter.weight((Double($0) - center + 0.5) / filterScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            for (k, w) in weights.enumerated() {
                let scaled = w * Double(1 << 22)
                fixed[x * taps + k] = Int(scaled < 0 ? (scaled - 0.5).rounded(.towardZero) : (scaled + 0.5).rounded(.towardZero))
            }
            bounds.append((start, end - start))
        }
        return (bounds, fixed, taps)
    }

    /// The centre `width`×`height` (transformers' center_crop: offsets rounded down).
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> Image {
        let top = max(0, (height - cropHeight) / 2), left = max(0, (width - cropWidth) / 2)
        var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * channels)
        for y in 0..<min(cropHeight, height) {
            for x in 0..<min(cropWidth, width) {
                for c in 0..<channels {
                    out[(y * cropWidth + x) * channels + c] = pixels[((top + y) * width + left + x) * channels + c]
                }
            }
        }
        return Image(width: cropWidth, height: cropHeight, channels: channels, pixels: out)
    }
}

/// CLIPImageProcessor's settings, read from a model folder's preprocessor_config.json.
public struct CLIPPreprocessing: Sendable, Codable {
    public var shortestEdge: Int
    public var cropHeight: Int
    public var cropWidth: Int
    public var mean: [Float]
    public var std: [Float]
    public var rescaleFactor: Float
    public var resample: Int

    public static let openAI = CLIPPreprocessing(shortestEdge: 224, cropHeight: 224, cropWidth: 224,
                                                 mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711],
                                                 rescaleFactor: 1 / 255, resample: 3)

    public init(shortestEdge: Int, cropHeight: Int, cropWidth: Int, mean: [Float], std: [Float], rescaleFactor: Float, resample: Int) {
        self.shortestEdge = shortestEdge
        self.cropHeight = cropHeight
        self.cropWidth = cropWidth
        self.mean = mean
        self.std = std
        self.rescaleFactor = rescaleFactor
        self.resample = resample
    }

    /// From preprocessor_config.json, or processor_config.json's "image_processor" section.
    public init(json: Data) throws {
        guard var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw MediaError.corrupt("preprocessor config is not a JSON object")
        }
        if let nested = object["image_processor"] as? [String: Any] { object = nested }
        let size = object["size"] as? [String: Int]
        let crop = object["crop_size"] as? [String: Int]
        func floats(_ key: String, _ fallback: [Float]) -> [Float] { (object[key] as? [Double])?.map(Float.init) ?? fallback }
        self.init(shortestEdge: size?["shortest_edge"] ?? 224, cropHeight: crop?["height"] ?? 224, cropWidth: crop?["width"] ?? 224,
                  mean: floats("image_mean", Self.openAI.mean), std: floats("image_std", Self.openAI.std),
                  rescaleFactor: Float(object["rescale_factor"] as? Double ?? 1 / 255), resample: object["resample"] as? Int ?? 3)
    }

    /// RGB image → pixel values [3, cropHeight, cropWidth].
    public func pixelValues(_ image: Image) -> Tensor {
        let rgb = image.rgb()
        // get_resize_output_image_size(default_to_square=False): the short side becomes shortestEdge.
        let short = min(rgb.width, rgb.height), long = max(rgb.width, rgb.height)
        let newLong = Int(Double(shortestEdge) * Double(long) / Double(short))
        let (w, h) = rgb.width <= rgb.height ? (shortestEdge, newLong) : (newLong, shortestEdge)
        let resized = rgb.resized(width: w, height: h, filter: resample == 2 ? .bilinear : .bicubic)
        let cropped = resized.centerCropped(width: cropWidth, height: cropHeight)
        var out = [Float](repeating: 0, count: 3 * cropHeight * cropWidth)
        let plane = cropHeight * cropWidth
        for i in 0..<plane {
            for c in 0..<3 {
                out[c * plane + i] = (Float(cropped.pixels[i * 3 + c]) * rescaleFactor - mean[c]) / std[c]
            }
        }
        return Tensor(shape: [3, cropHeight, cropWidth], storage: out)
    }
}
