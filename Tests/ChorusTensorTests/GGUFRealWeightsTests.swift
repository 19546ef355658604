import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// The real GGUF language models (scripts/fetch-models) read as the `gguf` package reads them
/// (scripts/fixtures/make_gguf_real_references.py): counts, types, metadata, and one tensor of every
/// quantization type they use, dequantized to the bit for the first values and summed over all.
@Suite struct GGUFRealWeightsTests {
    static let references: [String: [String: Any]] = {
        let path = (GGUFFileTests.folder as NSString).appendingPathComponent("real_weights.json")
        let data = FileManager.default.contents(atPath: path)!
        return try! JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
    }()

    @Test(arguments: ["smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m/gemma-3-270m-q4_k_m.gguf"])
    func readsAsTheReferenceReaderDoes(_ relative: String) throws {
        let reference = try #require(Self.references[relative])
        let file = try GGUFFile(path: try RealModels.path(relative))
        #expect(file.tensors.count == reference["tensor_count"] as? Int && file.metadata.count == reference["metadata_count"] as? Int)
        let types = Dictionary(grouping: file.tensors, by: { $0.type.description }).mapValues(\.count)
        #expect(types == reference["types"] as? [String: Int], "\(types)")
        for (key, value) in try #require(reference["metadata"] as? [String: Any]) {
            let ours = try file.required(key)
            if let text = value as? String { #expect(ours.string == text, "\(key)") } else { #expect(ours.int == (value as? NSNumber)?.intValue, "\(key)") }
        }
        #expect(try file.required("tokenizer.ggml.tokens").array?.count == reference["tokens"] as? Int)
        for (name, expected) in try #require(reference["tensors"] as? [String: [String: Any]]) {
            let info = try file.info(name)
            #expect(info.type.description == expected["type"] as? String && info.dimensions == expected["ne"] as? [Int], "\(name)")
            let values = try file.tensor(name).storage
            let firstBits = values.prefix(16).map { String(format: "0x%08X", $0.bitPattern) }
            #expect(firstBits == expected["first_bits"] as? [String], "\(name)")
            let sum = values.reduce(0.0) { $0 + Double($1) }, squares = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            let (refSum, refSquares) = ((expected["sum"] as? Double) ?? .nan, (expected["sum_of_squares"] as? Double) ?? .nan)
            // Summation order differs (numpy pairwise, here in sequence): the values are identical, the float64 sums agree to rounding.
            #expect(abs(sum - refSum) <= 1e-9 * refSquares.squareRoot() * Double(values.count).squareRoot() + 1e-6, "\(name): \(sum) vs \(refSum)")
            #expect(abs(squares - refSquares) <= 1e-8 * refSquares, "\(name): \(squares) vs \(refSquares)")
        }
    }
}
