import ChorusTensor
import Foundation
import Testing

/// Writes a safetensors file from raw parts, so tests can make valid and broken files on purpose.
func writeSafeTensors(_ url: URL, header: [String: Any], data: [UInt8], headerOverride: Data? = nil, lengthOverride: UInt64? = nil) throws {
    let headerBytes = try headerOverride ?? JSONSerialization.data(withJSONObject: header)
    var file = Data()
    withUnsafeBytes(of: (lengthOverride ?? UInt64(headerBytes.count)).littleEndian) { file.append(contentsOf: $0) }
    file.append(headerBytes)
    file.append(contentsOf: data)
    try file.write(to: url)
}

func temporaryFile(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("chorus-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)")
}

func bytes<T>(_ values: [T]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

@Suite struct SafeTensorsTests {
    static let fixture = Bundle.module.path(forResource: "clip-model", ofType: "safetensors", inDirectory: "Fixtures")!

    @Test func loadsTheCLIPFixtureAsTransformersWroteIt() throws {
        let file = try SafeTensorsFile(path: Self.fixture)
        #expect(file.names.count == 78)
        let embedding = try file.tensor("text_model.embeddings.token_embedding.weight")
        #expect(embedding.shape == [777, 64])
        #expect(abs(embedding.storage.reduce(0) { $0 + Double($1) } - 10.201499918680483) < 1e-5)
        #expect(embedding.storage[0] == 0.0070038288831710815)
        let scale = try file.tensor("logit_scale")
        #expect(scale.shape == [] && scale.storage == [2.6591999530792236])
    }

    @Test func halfAndBFloat16AndIntegersConvertExactly() throws {
        let half: [Float16] = [1.5, -2, 0.000061035156, 65504]
        let bf16: [UInt16] = [0x3FC0, 0xC000, 0x7F80]  // 1.5, -2, +inf
        let i64: [Int64] = [-3, 1 << 40]
        let i32: [Int32] = [7, -7]
        let u8: [UInt8] = [0, 255]
        var data: [UInt8] = []
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        for (name, dtype, shape, raw) in [("h", "F16", [2, 2], bytes(half)), ("b", "BF16", [3], bytes(bf16)),
                                          ("l", "I64", [2], bytes(i64)), ("i", "I32", [2], bytes(i32)), ("u", "U8", [2], u8)] {
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [data.count, data.count + raw.count]]
            data += raw
        }
        let url = temporaryFile("dtypes.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors(url, header: header, data: data)
        let file = try SafeTensorsFile(path: url.path)
        #expect(try file.tensor("h") == Tensor(shape: [2, 2], storage: half.map(Float.init)))
        #expect(try file.tensor("b").storage == [1.5, -2, .infinity])
        #expect(try file.tensor("l").storage == [-3, Float(1 << 40)])
        #expect(try file.int64s("l") == i64)
        #expect(try file.tensor("i").storage == [7, -7])
        #expect(try file.tensor("u").storage == [0, 255])
        #expect(file.metadata == ["format": "pt"])
    }

    static let corruptions: [(String, [String: Any], [UInt8], Data?, UInt64?, String)] = [
        ("offsets outside the data", ["w": ["dtype": "F32", "shape": [4], "data_offsets": [0, 16]]], [UInt8](repeating: 0, count: 8), nil, nil, "outside"),
        ("size does not match the shape", ["w": ["dtype": "F32", "shape": [3], "data_offsets": [0, 8]]], [UInt8](repeating: 0, count: 8), nil, nil, "needs 12 bytes"),
        ("overlapping tensors", ["a": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]], "b": ["dtype": "F32", "shape": [2], "data_offsets": [4, 12]]],
         [UInt8](repeating: 0, count: 12), nil, nil, "overlap"),
        ("unknown dtype", ["w": ["dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]]], [0], nil, nil, "F8_E4M3"),
        ("header is not JSON", [:], [], Data("{not json".utf8), nil, "not a JSON object"),
        ("header length past the end", [:], [], nil, 1 << 40, "runs past the end"),
        ("missing fields", ["w": ["dtype": "F32"]], [], nil, nil, "lacks"),
    ]

    @Test(arguments: 0..<corruptions.count)
    func corruptFilesFailAtLoadWithAClearError(case index: Int) throws {
        let (_, header, data, headerOverride, lengthOverride, expected) = Self.corruptions[index]
        let url = temporaryFile("corrupt.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors(url, header: header, data: data, headerOverride: headerOverride, lengthOverride: lengthOverride)
        #expect {
            _ = try SafeTensorsFile(path: url.path)
        } throws: { error in
            (error as? WeightFileError)?.message.contains(expected) == true
        }
    }

    @Test func aTruncatedFileIsRefused() throws {
        let url = temporaryFile("short.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data([1, 2, 3]).write(to: url)
        #expect(throws: WeightFileError.self) { try SafeTensorsFile(path: url.path) }
    }

    @Test func halvesLongerThanOneReadBufferWidenAcrossItsChunks() throws {
        // 3 M halves are 6 MB: the widening reads go 4 MiB at a time, so the tensor crosses a chunk edge.
        let count = 3_000_000
        let half = (0..<count).map { Float16(Float($0 % 4093) - 2046) }
        let url = temporaryFile("big-half.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors(url, header: ["h": ["dtype": "F16", "shape": [count], "data_offsets": [0, 2 * count]]], data: bytes(half))
        let file = try SafeTensorsFile(path: url.path)
        let read = try file.tensor("h").storage
        #expect(read.count == count)
        #expect(zip(read, half).allSatisfy { $0 == Float($1) })
    }

    @Test func aFileThatShrinksAfterOpeningFailsTheReadNamingTheTensor() throws {
        let url = temporaryFile("shrinks.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors(url, header: ["w": ["dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]]],
                             data: bytes([Float](repeating: 1, count: 1024)))
        let file = try SafeTensorsFile(path: url.path)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 100)
        try handle.close()
        #expect {
            _ = try file.tensor("w")
        } throws: { error in
            let message = (error as? WeightFileError)?.message ?? ""
            return message.contains("tensor 'w'") && message.contains("the file ends after 100 bytes")
        }
    }

    @Test func missingPathsAndFoldersAreRefusedByName() throws {
        #expect {
            _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors")
        } throws: { error in
            (error as? WeightFileError).map { $0.file == "model.safetensors" && $0.message.contains("No such file") } == true
        }
        #expect {
            _ = try SafeTensorsFile(path: FileManager.default.temporaryDirectory.path)
        } throws: { error in
            (error as? WeightFileError)?.message == "cannot read: not a regular file"
        }
    }

    @Test func shardedCheckpointsFollowTheIndex() throws {
        let folder = temporaryFile("sharded")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try writeSafeTensors(folder.appendingPathComponent("model-00001-of-00002.safetensors"),
                             header: ["a": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]]], data: bytes([Float(1), 2]))
        try writeSafeTensors(folder.appendingPathComponent("model-00002-of-00002.safetensors"),
                             header: ["b": ["dtype": "F32", "shape": [1], "data_offsets": [0, 4]]], data: bytes([Float(3)]))
        let index: [String: Any] = ["metadata": [:], "weight_map": ["a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"]]
        try JSONSerialization.data(withJSONObject: index).write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        let checkpoint = try SafeTensorsCheckpoint(folder: folder.path)
        #expect(checkpoint.names == ["a", "b"])
        #expect(try checkpoint.tensor("b").storage == [3])

        let wrong: [String: Any] = ["weight_map": ["a": "model-00002-of-00002.safetensors"]]
        try JSONSerialization.data(withJSONObject: wrong).write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        #expect(throws: WeightFileError.self) { try SafeTensorsCheckpoint(folder: folder.path) }
    }
}

@Suite struct WeightSourceTests {
    struct VisionConfig: Decodable {
        let hiddenSize: Int
        let patchSize: Int
        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", patchSize = "patch_size"
        }
    }

    @Test func renamedWeightsAndConfigsUseTheFileNames() throws {
        let file = try SafeTensorsFile(path: SafeTensorsTests.fixture)
        let renamed = RenamedWeights(file, mapping: ["scale": "logit_scale"])
        #expect(try renamed.tensor("scale").storage == [2.6591999530792236])
        #expect(throws: WeightFileError.self) { try renamed.tensor("logit_scale") }

        let url = temporaryFile("config.json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"hidden_size": 64, "patch_size": 32, "extra": true}"#.utf8).write(to: url)
        let config = try JSONConfig.load(VisionConfig.self, from: url.path)
        #expect(config.hiddenSize == 64 && config.patchSize == 32)
        try Data(#"{"hidden_size": 64}"#.utf8).write(to: url)
        #expect {
            _ = try JSONConfig.load(VisionConfig.self, from: url.path)
        } throws: { error in
            (error as? WeightFileError)?.message == #"lacks "patch_size""#
        }
    }
}
