import ChorusTensor
import Foundation
import Testing

/// The GGUF reader and ggml's dequantization against the `gguf` PyPI package on a file it wrote
/// (scripts/fixtures/make_gguf_fixtures.py): every metadata type, every supported tensor type with random
/// block bytes (every bit pattern of quants and sub-block scales), bit-exact.
@Suite struct GGUFFileTests {
    static let folder = Bundle.module.path(forResource: "gguf", ofType: nil, inDirectory: "Fixtures")!
    static func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

    static let manifest: [String: Any] = {
        let data = FileManager.default.contents(atPath: path("manifest.json"))!
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    @Test func theHeaderAndMetadataAreReadAsTheReferenceReaderReadsThem() throws {
        let file = try GGUFFile(path: Self.path("quants.gguf"))
        #expect(file.version == 3 && file.alignment == 32 && file.dataOffset == Self.manifest["data_offset"] as? Int)
        let keys = try #require(Self.manifest["metadata"] as? [[String: Any]])
        #expect(file.metadata.count == keys.count)
        #expect(file.metadata["general.architecture"] == .string("test"))
        #expect(file.metadata["test.u8"] == .uint8(200) && file.metadata["test.i8"] == .int8(-100))
        #expect(file.metadata["test.u16"] == .uint16(60000) && file.metadata["test.i16"] == .int16(-30000))
        #expect(file.metadata["test.u32"] == .uint32(4_000_000_000) && file.metadata["test.i32"] == .int32(-2_000_000_000))
        #expect(file.metadata["test.u64"] == .uint64(18_364_758_544_493_064_720) && file.metadata["test.i64"] == .int64(-9_141_386_507_638_288_912))
        #expect(file.metadata["test.f32"] == .float32(Float(bitPattern: 0x3DCC_CCCD)) && file.metadata["test.f64"] == .float64(-2.718281828459045))
        #expect(file.metadata["test.bool"] == .bool(true) && file.metadata["test.bool_false"] == .bool(false))
        #expect(file.metadata["test.string"] == .string("héllo, 世界 🌍"))
        #expect(file.metadata["test.array_i32"] == .array([.int32(1), .int32(-2), .int32(.max), .int32(.min)]))
        #expect(file.metadata["test.array_str"] == .array([.string("alpha"), .string(""), .string("ünïcödé")]))
        #expect(file.metadata["test.array_f32"]?.array?.compactMap(\.double) == [0.5, -1.25, Double(Float(3.14159265358979)), Double(Float(1e-8))])
        #expect(file.metadata["test.array_empty"] == .array([]))
        #expect(file.metadata["test.u64"]?.int == nil && file.metadata["test.i32"]?.int == -2_000_000_000)
    }

    @Test func everyTensorTypeDequantizesExactlyAsTheGGUFPackage() throws {
        let file = try GGUFFile(path: Self.path("quants.gguf"))
        let tensors = try #require(Self.manifest["tensors"] as? [[String: Any]])
        #expect(file.tensors.count == tensors.count)
        var typesSeen: Set<String> = []
        for entry in tensors {
            let name = try #require(entry["name"] as? String)
            let info = try file.info(name)
            #expect(info.type.description == entry["type"] as? String && info.dimensions == entry["ne"] as? [Int], "\(name)")
            #expect(info.shape == entry["shape"] as? [Int] && info.range.lowerBound == entry["offset"] as? Int && info.range.count == entry["n_bytes"] as? Int)
            let expectedPath = try #require(entry["expected"] as? String)
            let expectedData = try #require(FileManager.default.contents(atPath: Self.path(expectedPath)))
            let expected = expectedData.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) } }
            let tensor = try file.tensor(name)
            #expect(tensor.shape == info.shape && tensor.storage.count == expected.count, "\(name)")
            let mismatches = zip(tensor.storage, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(mismatches == 0, "\(name) (\(info.type)): \(mismatches) of \(expected.count) values differ")
            typesSeen.insert(info.type.description)
        }
        #expect(typesSeen == ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"])
    }

    @Test func brokenFilesFailWithTheirReason() throws {
        func failure(_ name: String) -> String {
            do {
                _ = try GGUFFile(path: Self.path(name))
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        #expect(failure("bad_magic.gguf").contains("is not a GGUF file"))
        #expect(failure("truncated.gguf").contains("the tensor count is 17, more than the 84 bytes left could hold"))
        #expect(failure("huge_count.gguf").contains("the tensor count is 4611686018427387904, more than"))
        #expect(failure("nowhere.gguf").contains("cannot read"))
    }

    /// Every prefix of the file and a sweep of single-byte corruptions of its header: each opens or
    /// throws, none traps (the fuzz target runs this at scale).
    @Test func corruptHeadersThrowInsteadOfTrapping() throws {
        let original = try #require(FileManager.default.contents(atPath: Self.path("quants.gguf")))
        let scratch = NSTemporaryDirectory() + "gguf-corrupt-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var opened = 0
        for cut in stride(from: 0, to: 1440, by: 7) {
            try original.prefix(cut).write(to: URL(fileURLWithPath: scratch))
            if (try? GGUFFile(path: scratch)) != nil { opened += 1 }
        }
        #expect(opened == 0, "a header cut short never opens")
        var bytes = [UInt8](original)
        for position in stride(from: 8, to: 1440, by: 3) {
            let saved = bytes[position]
            for value: UInt8 in [0xFF, 0x7F, 0x00] {
                bytes[position] = value
                try Data(bytes).write(to: URL(fileURLWithPath: scratch))
                if let file = try? GGUFFile(path: scratch) {
                    for info in file.tensors where info.type.canDequantize { _ = try? file.tensor(info.name) }
                }
            }
            bytes[position] = saved
        }
    }
}
