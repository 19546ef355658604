import ChorusAPI
import ChorusInput
import ChorusMedia
import ChorusStableDiffusion
import ChorusWire
import Foundation

/// A request's `controlnets`: each named ControlNet checked against the base model, its control image decoded
/// (or drawn from keypoints), run through its preprocessor and resized to the output size.
extension DiffusionServer {
    /// ControlNets a run may stack.
    static let maxControlNets = 4

    /// Field ranges, before any model or image is looked at.
    static func checkControlRanges(_ p: TextToImageRequest) throws {
        guard p.controlnets.count <= maxControlNets else {
            throw WireStatus(.invalidArgument, "\(p.controlnets.count) controlnets; at most \(maxControlNets) run together")
        }
        for (i, c) in p.controlnets.enumerated() {
            let field = "controlnets[\(i)]"
            _ = try Checked.number(c.lowThreshold, "\(field).low_threshold", in: 0...10_000)
            _ = try Checked.number(c.highThreshold, "\(field).high_threshold", in: 0...10_000)
            _ = try Checked.number(c.conditioningScale, "\(field).conditioning_scale", in: 0...10)
            _ = try Checked.number(c.guidanceStart, "\(field).guidance_start", in: 0...1)
            _ = try Checked.number(c.guidanceEnd, "\(field).guidance_end", in: 0...1)
            let end = c.guidanceEnd == 0 ? 1 : c.guidanceEnd
            guard c.guidanceStart < end else {
                throw WireStatus(.invalidArgument, "\(field): guidance_start \(c.guidanceStart) must be below guidance_end \(end)")
            }
        }
    }

    func controlNets(_ p: TextToImageRequest, engine: StableDiffusionEngine, width: Int, height: Int, img2img: Bool) throws -> [ControlNetJob] {
        let loaded = registry.models(ControlNetModel.self)
        return try p.controlnets.enumerated().map { i, c in
            let field = "controlnets[\(i)]"
            guard let model = loaded[c.model] else {
                let names = loaded.keys.sorted()
                throw WireStatus(.notFound, "\(field): no ControlNet named '\(c.model)'; loaded: \(names.isEmpty ? "none (LoadModel a diffusers ControlNet folder)" : names.joined(separator: ", "))")
            }
            try Self.check(model, named: c.model, fits: engine)
            let image = try Self.controlImage(c, field: field, width: width, height: height)
            let end = c.guidanceEnd == 0 ? 1 : c.guidanceEnd
            return ControlNetJob(model: model, image: image, scale: c.conditioningScale == 0 ? (img2img ? 0.8 : 1) : c.conditioningScale,
                                 start: Double(c.guidanceStart), end: Double(end))
        }
    }

    /// A ControlNet fits a UNet whose encoder has its shape: widths, blocks, layers and text width, and a
    /// conditioning embedding that reduces the image as the VAE does.
    static func check(_ model: ControlNetModel, named name: String, fits engine: StableDiffusionEngine) throws {
        let unet = engine.pipeline.unet.config, control = model.config
        let mismatch: String? =
            control.crossAttentionDim[0, of: 1] != unet.crossAttentionDim[0, of: 1] ? "cross_attention_dim \(control.crossAttentionDim[0, of: 1]) vs \(unet.crossAttentionDim[0, of: 1])"
            : control.blockOutChannels != unet.blockOutChannels ? "block_out_channels \(control.blockOutChannels) vs \(unet.blockOutChannels)"
            : control.downBlockTypes != unet.downBlockTypes || control.layersPerBlock != unet.layersPerBlock ? "down blocks \(control.downBlockTypes)×\(control.layersPerBlock) vs \(unet.downBlockTypes)×\(unet.layersPerBlock)"
            : model.downscale != engine.pipeline.downscale ? "a control image reduced \(model.downscale)× vs latents \(engine.pipeline.downscale)× smaller than the image"
            : nil
        if let mismatch {
            throw WireStatus(.invalidArgument, "ControlNet '\(name)' does not fit '\(engine.name)': \(mismatch)")
        }
    }

    /// The control image at the output size, RGB: the given image (gray ones spread to RGB), its Canny edges, or
    /// the pose drawn from keypoints (on the image's canvas, the JSON's, or the output size).
    static func controlImage(_ c: ControlNetInput, field: String, width: Int, height: Int) throws -> Image {
        func decoded() throws -> Image? {
            guard let data = c.image?.data, !data.isEmpty else { return nil }
            do {
                return try ImageCodec.decode([UInt8](data), limits: ImageLimits(maxWidth: 8192, maxHeight: 8192, maxPixels: 64 << 20))
            } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "\(field).image: \(error)")
            }
        }
        var image: Image
        do {
            switch c.preprocessor {
            case "", "none":
                guard let given = try decoded() else { throw WireStatus(.invalidArgument, "\(field) has no image (the control image)") }
                image = given.rgb()
            case "canny":
                guard let given = try decoded() else { throw WireStatus(.invalidArgument, "\(field) has no image to find edges in") }
                let (low, high) = c.lowThreshold == 0 && c.highThreshold == 0 ? (100.0, 200.0) : (Double(c.lowThreshold), Double(c.highThreshold))
                image = CannyEdges.edges(given, low: low, high: high, l2Gradient: c.l2Gradient).rgb()
            case "pose_keypoints":
                let keypoints = try OpenPoseDrawing.keypoints(json: c.keypointsJson)
                let canvas = try decoded()
                image = try OpenPoseDrawing.draw(keypoints.people, width: canvas?.width ?? keypoints.canvasWidth ?? width,
                                                 height: canvas?.height ?? keypoints.canvasHeight ?? height)
            default:
                throw WireStatus(.invalidArgument, "\(field).preprocessor '\(c.preprocessor)' is not one of none, canny, pose_keypoints")
            }
            return image.width == width && image.height == height ? image : try image.resized(width: width, height: height)
        } catch let error as OpenPoseDrawing.KeypointsError {
            throw WireStatus(.invalidArgument, "\(field).keypoints_json: \(error)")
        } catch let error as MediaError {
            throw WireStatus(.invalidArgument, "\(field): \(error)")
        }
    }
}
