import ChorusAPI
import ChorusWire
import Foundation
import Hummingbird

/// `POST /v1/embeddings` on VisionService's CLIP: text inputs through the text tower and, as an
/// extension, image inputs given as data URLs (`data:image/...`) through the vision tower.
package struct Embeddings {
    let vision: VisionClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    func handle(_ request: Request) async throws -> Response {
        let (model, inputs, images, format) = try Self.parse(try await request.jsonObject(limit: bodyLimit))
        // Texts and images go to their towers in one call each; the answer keeps the input order.
        let imageIndices = inputs.indices.filter { images[$0] != nil }
        let textIndices = inputs.indices.filter { images[$0] == nil }
        var vectors = [[Float]](repeating: [], count: inputs.count)
        var tokens: UInt32 = 0
        if !textIndices.isEmpty {
            let answer = try await vision.embedTexts(EmbedTextsRequest(model: model, texts: textIndices.map { inputs[$0] }), options: options)
            for (i, embedding) in zip(textIndices, answer.embeddings) { vectors[i] = embedding.values }
            tokens = answer.tokens
        }
        if !imageIndices.isEmpty {
            let images = imageIndices.compactMap { images[$0] }
            let answer = try await vision.embedImages(EmbedImagesRequest(model: model, images: images), options: options)
            for (i, embedding) in zip(imageIndices, answer.embeddings) { vectors[i] = embedding.values }
        }
        let data = vectors.enumerated().map { i, vector -> [String: Any] in
            let embedding: Any = format == "float" ? vector.map(Double.init)
                : vector.withUnsafeBufferPointer { Data(buffer: $0).base64EncodedString() }
            return ["object": "embedding", "index": i, "embedding": embedding]
        }
        return Response.json(["object": "list", "data": data, "model": model, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]])
    }

    /// The body's model, inputs (with the image of each data-URL input) and encoding format, checked.
    package static func parse(_ body: [String: Any]) throws -> (model: String, inputs: [String], images: [EncodedImage?], format: String) {
        let fields = JSONFields(body)
        let model = try fields.requiredString("model")
        let inputs: [String]
        switch body["input"] {
        case let one as String: inputs = [one]
        case let many as [String]: inputs = many
        default: throw OpenAIError.invalid("'input' must be a string or a list of strings (token-id inputs are not supported)", param: "input")
        }
        guard !inputs.isEmpty else { throw OpenAIError.invalid("'input' is empty", param: "input") }
        let format = try fields.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw OpenAIError.invalid("encoding_format '\(format)' is neither float nor base64", param: "encoding_format")
        }
        let images = try inputs.enumerated().map { i, input in
            input.hasPrefix("data:image/") ? EncodedImage(data: Data(try dataURLBytes(input, field: "input[\(i)]"))) : nil
        }
        return (model, inputs, images, format)
    }
}
