import ChorusCLIP
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import ChorusWire

/// A CLIP model as the vision service serves it, with its two dynamic batchers: concurrent image calls share image batches,
/// text calls share text batches.
final class ServedCLIP: Sendable {
    struct Batching: Sendable {
        var window: Duration
        var maxBatch: Int
        var maxWaiting: Int
    }

    let name: String
    let pipeline: CLIPPipeline
    let images: EmbeddingBatcher<[Float]>
    let texts: EmbeddingBatcher<String>
    private let compute: ComputeQueue

    init(name: String, pipeline: CLIPPipeline, batching: Batching, limiter: ConcurrencyLimiter, compute: ComputeQueue) {
        self.name = name
        self.pipeline = pipeline
        self.compute = compute
        let side = pipeline.model.config.vision.imageSize
        images = EmbeddingBatcher(window: batching.window, maxBatch: batching.maxBatch, maxWaiting: batching.maxWaiting,
                                  limiter: limiter, compute: compute) { planes in
            pipeline.model.imageEmbeddings(Tensor(shape: [planes.count, 3, side, side], storage: planes.flatMap { $0 }))
        }
        texts = EmbeddingBatcher(window: batching.window, maxBatch: batching.maxBatch, maxWaiting: batching.maxWaiting,
                                 limiter: limiter, compute: compute) { texts in
            pipeline.embed(texts: texts).embeddings
        }
    }

    var dimension: Int { pipeline.model.dimension }

    /// Decodes and preprocesses on a compute thread; a bad image is INVALID_ARGUMENT naming which one.
    func pixelPlanes(_ encoded: [[UInt8]], limits: ImageLimits) async throws -> [[Float]] {
        let pipeline = self.pipeline
        return try await compute.run { _ in
            try encoded.enumerated().map { i, bytes in
                do {
                    return try pipeline.preprocessor.pixelValues(ImageCodec.decode(bytes, limits: limits)).values
                } catch let error as MediaError {
                    throw WireStatus(.invalidArgument, encoded.count == 1 ? "image: \(error)" : "image \(i): \(error)")
                }
            }
        }
    }

    /// L2-normalised image embeddings, one row per image.
    func embed(images encoded: [[UInt8]], limits: ImageLimits) async throws -> Tensor {
        try await images.embed(pixelPlanes(encoded, limits: limits))
    }

    func embed(texts list: [String]) async throws -> Tensor {
        try await texts.embed(list)
    }

    func tokenCount(_ list: [String]) -> Int {
        pipeline.tokenize(list).mask.reduce(0) { $0 + $1.reduce(0, +) }
    }
}
