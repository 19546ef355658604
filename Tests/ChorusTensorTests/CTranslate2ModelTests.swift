import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

@Suite struct CTranslate2ModelTests {
    @Test func loadsWhisperTinyEnglishFromMeetingNoterModels() throws {
        let model = try CTranslate2Model(path: RealModels.path("whisper-tiny.en/model.bin"))
        #expect(model.spec == "WhisperSpec" && model.revision == 3 && model.binaryVersion == 6)
        #expect(model.variables.count == 148)
        let embeddings = try model.tensor("decoder/embeddings/weight")
        #expect(embeddings.shape == [51864, 384])
        #expect(Array(embeddings.storage.prefix(3)) == [0.034698486328125, -0.0052947998046875, -0.0164337158203125])
        #expect(abs(embeddings.storage.reduce(0) { $0 + Double($1) } - 47954.70336383581) < 0.05)
        // The projection is stored once, as an alias of the embeddings.
        #expect(model.aliases["decoder/projection/weight"] == "decoder/embeddings/weight")
        #expect(try model.tensor("decoder/projection/weight").storage.prefix(3) == embeddings.storage.prefix(3))
        // The fused QKV of self-attention: 3 × 384 rows.
        #expect(try model.variable("encoder/layer_0/self_attention/linear_0/weight").shape == [1152, 384])
        #expect(try model.scalar("encoder/num_heads") == 6)
    }

    @Test func loadsWhisperBaseJoinedFromTwoPackages() throws {
        let model = try CTranslate2Model(path: RealModels.path("whisper-base/model.bin"))
        #expect(model.variables.count == 214)
        let embeddings = try model.tensor("decoder/embeddings/weight")
        #expect(embeddings.shape == [51865, 512])
        #expect(abs(embeddings.storage.reduce(0) { $0 + Double($1) } - 517946.0272909999) < 0.5)
        #expect(try model.scalar("encoder/num_heads") == 8)
    }

    /// A tiny model.bin written by hand, and broken in several ways.
    static func file(variables: [(String, [UInt32], UInt8, [UInt8])], aliases: [(String, String)] = [], version: UInt32 = 6, trailing: [UInt8] = []) -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            let bytes = Array(s.utf8) + [0]
            withUnsafeBytes(of: UInt16(bytes.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes)
        }
        u32(version); string("TestSpec"); u32(1); u32(UInt32(variables.count))
        for (name, shape, dtype, bytes) in variables {
            string(name); out.append(UInt8(shape.count)); shape.forEach(u32); out.append(dtype); u32(UInt32(bytes.count)); out.append(contentsOf: bytes)
        }
        u32(UInt32(aliases.count))
        for (alias, target) in aliases { string(alias); string(target) }
        out.append(contentsOf: trailing)
        return out
    }

    func load(_ data: Data) throws -> CTranslate2Model {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ct2-\(UUID().uuidString).bin")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try CTranslate2Model(path: url.path)
    }

    @Test func handWrittenModelLoadsEveryDType() throws {
        let half = [Float16(0.5), Float16(-3)].withUnsafeBytes { Array($0) }
        let model = try load(Self.file(variables: [("w", [2], 4, half), ("n", [], 2, [6, 0]), ("q", [2], 1, [0xFF, 0x02])], aliases: [("tied", "w")]))
        #expect(try model.tensor("tied").storage == [0.5, -3])
        #expect(try model.scalar("n") == 6)
        #expect(try model.tensor("q").storage == [-1, 2])
    }

    @Test func brokenFilesAreRefusedWithTheReason() throws {
        let cases: [(Data, String)] = [
            (Self.file(variables: [("w", [4], 0, [0, 0, 0, 0])]), "needs 16 bytes"),
            (Self.file(variables: [("w", [1], 9, [0])]), "unknown dtype code 9"),
            (Self.file(variables: [], aliases: [("a", "missing")]), "does not hold"),
            (Self.file(variables: [], version: 2), "binary version 2"),
            (Self.file(variables: [], trailing: [1, 2, 3]), "after its last entry"),
            (Self.file(variables: [("w", [2], 0, [UInt8](repeating: 0, count: 8))]).prefix(30), "truncated"),
        ]
        for (data, reason) in cases {
            #expect {
                _ = try load(data)
            } throws: { error in
                (error as? WeightFileError)?.message.contains(reason) == true
            }
        }
    }
}
