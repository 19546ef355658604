/// Turns an image into CLIP's `pixel_values`, as transformers' PIL-based CLIPImageProcessor:
/// convert to RGB, resize (shortest edge, PIL bicubic), centre crop, rescale by 1/255, normalise
/// with the mean and std, channels first.
public struct CLIPImagePreprocessor: Sendable {
    public var config: CLIPImageProcessorConfig
    /// Longest side over shortest side accepted: panoramas yes, a 16384×1 strip no.
    public static let maxAspectRatio = 32

    public init(config: CLIPImageProcessorConfig = CLIPImageProcessorConfig()) {
        self.config = config
    }

    /// Float32 values laid out as (3, height, width); the batch dimension is the caller's.
    public func pixelValues(_ image: Image) throws -> (values: [Float], width: Int, height: Int) {
        var image = config.doConvertRgb ? image.rgb() : image
        guard image.channels == 3 else {
            throw MediaError.unsupportedPixelLayout("CLIP preprocessing needs RGB, got \(image.channels) channels")
        }
        if config.doResize {
            let (width, height) = try resizedSize(width: image.width, height: image.height)
            image = try image.resized(width: width, height: height, filter: try filter())
        }
        if config.doCenterCrop {
            guard let width = config.cropSize.width, let height = config.cropSize.height else {
                throw MediaError.invalidImage("crop_size needs width and height")
            }
            image = try image.centerCropped(width: width, height: height)
        }
        return (normalizedPlanes(image), image.width, image.height)
    }

    /// transformers' get_resize_output_image_size with default_to_square=False: the short side
    /// becomes `shortest_edge` and the long side is scaled and truncated.
    public func resizedSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        if let edge = config.size.shortestEdge {
            let short = min(width, height)
            let long = max(width, height)
            guard short > 0, edge > 0 else { throw MediaError.invalidImage("cannot resize a \(width)×\(height) image to a short side of \(edge)") }
            // A 16384×1 image would become 3,670,016×224 (2.5 GB) before the centre crop keeps 224×224.
            guard long <= short * Self.maxAspectRatio else {
                throw MediaError.invalidImage("the image is \(width)×\(height); CLIP preprocessing takes aspect ratios up to \(Self.maxAspectRatio):1")
            }
            let newLong = Int(Double(edge) * Double(long) / Double(short))  // checked: positive, at most 32 × edge
            return width <= height ? (edge, newLong) : (newLong, edge)
        }
        if let width = config.size.width, let height = config.size.height {
            return (width, height)
        }
        throw MediaError.invalidImage("size needs shortest_edge or width and height")
    }

    private func filter() throws -> ResizeFilter {
        switch config.resample {
        case 2: return .bilinear
        case 3: return .bicubic
        default: throw MediaError.invalidImage("resample \(config.resample) is not supported (2 bilinear, 3 bicubic)")
        }
    }

    private func normalizedPlanes(_ image: Image) -> [Float] {
        let planeSize = image.width * image.height
        var values = [Float](repeating: 0, count: 3 * planeSize)
        for c in 0..<3 {
            // transformers rescales in float64 and rounds to float32 before normalising in float32.
            let rescale = config.doRescale ? config.rescaleFactor : 1
            let mean = config.doNormalize ? Float(config.imageMean[c]) : 0
            let std = config.doNormalize ? Float(config.imageStd[c]) : 1
            let lookup = (0..<256).map { (Float(Double($0) * rescale) - mean) / std }
            for i in 0..<planeSize {
                values[c * planeSize + i] = lookup[Int(image.pixels[i * 3 + c])]
            }
        }
        return values
    }
}
