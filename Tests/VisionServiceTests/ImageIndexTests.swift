import ChorusWire
import Foundation
import Logging
import Testing
@testable import VisionService

@Suite struct ImageIndexTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "chorus-index-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func searchRanksByCosineAndUpsertReplaces() {
        var index = ImageIndex(dimension: 3)
        #expect(index.upsert(ids: ["x", "y", "z"], vectors: [[1, 0, 0], [0, 2, 0], [1, 1, 0]]) == 3)
        let hits = index.search([1, 0.1, 0], k: 2)
        #expect(hits.map(\.id) == ["x", "z"])
        #expect(abs(hits[0].score - 1 / Float(1.01).squareRoot()) < 1e-6)
        #expect(index.upsert(ids: ["x"], vectors: [[0, -1, 0]]) == 0)
        #expect(index.search([0, -1, 0], k: 1).first?.id == "x")
        #expect(index.count == 3)
    }

    @Test func removalKeepsEveryOtherRowFindable() {
        var index = ImageIndex(dimension: 4)
        let ids = (0..<10).map { "id\($0)" }
        index.upsert(ids: ids, vectors: (0..<10).map { i in [Float(i), 1, Float(i % 3), -1] })
        #expect(index.remove(["id2", "id9", "missing"]) == 2)
        #expect(index.count == 8)
        for (i, id) in ids.enumerated() where id != "id2" && id != "id9" {
            #expect(index.search([Float(i), 1, Float(i % 3), -1], k: 1).first?.id == id)
        }
    }

    @Test func topKMatchesAFullSort() {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<5000).map { _ in Float.random(in: -1...1, using: &generator) }
        let sorted = values.indices.sorted { values[$0] > values[$1] }
        #expect(TopK.indices(of: values, k: 7) == Array(sorted.prefix(7)))
        #expect(TopK.indices(of: values, k: 4000) == Array(sorted.prefix(4000)))
        #expect(TopK.indices(of: [], k: 3).isEmpty)
    }

    @Test func fileRoundTripsAndDetectsDamage() throws {
        var index = ImageIndex(dimension: 2)
        index.upsert(ids: ["ünïcode id", "b"], vectors: [[3, 4], [0, 1]])
        let bytes = IndexFile.encode(index)
        #expect(try IndexFile.decode(bytes, path: "t") == index)
        var flipped = bytes
        flipped[flipped.count / 2] ^= 0x40
        #expect(throws: IndexFile.Corrupt.self) { try IndexFile.decode(flipped, path: "t") }
        #expect(throws: IndexFile.Corrupt.self) { try IndexFile.decode(Array(bytes.dropLast(3)), path: "t") }
        #expect(throws: IndexFile.Corrupt.self) { try IndexFile.decode([], path: "t") }
    }

    @Test func storePersistsAndReportsACorruptFile() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "test")
        let store = try IndexStore(directory: directory, logger: logger)
        _ = try await store.add(to: "photos", ids: ["a", "b"], vectors: [[1, 0], [0, 1]])
        _ = try await store.add(to: "other", ids: ["c"], vectors: [[1, 1]])
        #expect(try await store.delete(from: "photos", ids: ["b"]) == (1, 1))

        // Damage one file: the other index still loads, the damaged one answers DATA_LOSS and stays on disk.
        let damaged = directory + "/other.chidx"
        var bytes = [UInt8](FileManager.default.contents(atPath: damaged)!)
        bytes[bytes.count - 6] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let reopened = try IndexStore(directory: directory, logger: logger)
        #expect(try await reopened.search("photos", query: [1, 0], k: 5).map(\.id) == ["a"])
        do {
            _ = try await reopened.search("other", query: [1, 0], k: 1)
            Issue.record("a corrupt index answered")
        } catch let status as WireStatus {
            #expect(status.code == .dataLoss && status.message.contains("other.chidx"), "\(status)")
        }
        #expect(FileManager.default.fileExists(atPath: damaged))
        // Deleting the whole index moves the unreadable file aside; the name is usable again.
        _ = try await reopened.delete(from: "other", ids: [])
        #expect(!FileManager.default.fileExists(atPath: damaged))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).contains { $0.hasPrefix("other.chidx.corrupt-") })
        #expect(try await reopened.add(to: "other", ids: ["d"], vectors: [[0, 1]]) == (1, 1))
    }

    @Test func storeRefusesBadNamesAndMixedDimensions() async throws {
        let store = try IndexStore(directory: nil, logger: Logger(label: "test"))
        for name in ["", "../etc", ".hidden", String(repeating: "x", count: 65), "a/b"] {
            #expect(throws: WireStatus.self) { try IndexStore.validate(name) }
        }
        _ = try await store.add(to: "v", ids: ["a"], vectors: [[1, 0, 0]])
        await #expect(throws: WireStatus.self) { try await store.add(to: "v", ids: ["b"], vectors: [[1, 0]]) }
        await #expect(throws: WireStatus.self) { try await store.search("nope", query: [1], k: 1) }
    }
}
