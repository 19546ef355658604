import Foundation

/// The image part of a Hugging Face `preprocessor_config.json` for CLIP-style processors, with the
/// file's own key names and transformers' defaults for keys the file leaves out.
public struct CLIPImageProcessorConfig: Codable, Equatable, Sendable {
    public struct Size: Codable, Equatable, Sendable {
        public var shortestEdge: Int?
        public var height: Int?
        public var width: Int?

        public init(shortestEdge: Int? = nil, height: Int? = nil, width: Int? = nil) {
            self.shortestEdge = shortestEdge
            self.height = height
            self.width = width
        }

        enum CodingKeys: String, CodingKey {
            case shortestEdge = "shortest_edge"
            case height, width
        }
    }

    public var doResize = true
    public var size = Size(shortestEdge: 224)
    /// PIL's resampling code: 2 bilinear, 3 bicubic.
    public var resample = 3
    public var doCenterCrop = true
    public var cropSize = Size(height: 224, width: 224)
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255.0
    public var doNormalize = true
    public var imageMean = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd = [0.26862954, 0.26130258, 0.27577711]
    public var doConvertRgb = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample
        case doCenterCrop = "do_center_crop", cropSize = "crop_size"
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize", imageMean = "image_mean", imageStd = "image_std"
        case doConvertRgb = "do_convert_rgb"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = CLIPImageProcessorConfig()
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? defaults.doResize
        size = try c.decodeIfPresent(Size.self, forKey: .size) ?? defaults.size
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? defaults.resample
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? defaults.doCenterCrop
        cropSize = try c.decodeIfPresent(Size.self, forKey: .cropSize) ?? defaults.cropSize
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? defaults.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? defaults.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? defaults.doNormalize
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? defaults.imageMean
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? defaults.imageStd
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb) ?? defaults.doConvertRgb
    }

    /// Reads either a plain `preprocessor_config.json` or a `processor_config.json`, which nests
    /// the same object under "image_processor".
    public static func load(json: Data) throws -> CLIPImageProcessorConfig {
        struct Nested: Decodable {
            let imageProcessor: CLIPImageProcessorConfig?
            enum CodingKeys: String, CodingKey { case imageProcessor = "image_processor" }
        }
        let decoder = JSONDecoder()
        if let nested = try decoder.decode(Nested.self, from: json).imageProcessor {
            return nested
        }
        return try decoder.decode(CLIPImageProcessorConfig.self, from: json)
    }
}
