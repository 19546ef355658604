import ChorusInput
import ChorusWire
import Foundation
import Logging

/// The named indexes of the service, each persisted to `<data-dir>/<name>.chidx` after every change.
/// A file that does not read back is kept as it is and reported: calls on that index answer DATA_LOSS
/// naming the file until an operator moves it aside (or deletes the whole index, which moves it aside).
actor IndexStore {
    private var indexes: [String: ImageIndex] = [:]
    private var corrupt: [String: String] = [:]
    private let directory: String?
    private let logger: Logger

    /// Reads every index file under `directory` (created if missing); nil keeps indexes in memory only.
    init(directory: String?, logger: Logger) throws {
        self.directory = directory
        self.logger = logger
        guard let directory else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(IndexFile.suffix) }
        for file in files.sorted() {
            let name = String(file.dropLast(IndexFile.suffix.count))
            let path = (directory as NSString).appendingPathComponent(file)
            do {
                guard let data = FileManager.default.contents(atPath: path) else { throw POSIXFailure(operation: "read \(path)") }
                let index = try IndexFile.decode([UInt8](data), path: path)
                indexes[name] = index
                logger.info("index '\(name)': \(index.count) vectors of dimension \(index.dimension) from \(path)")
            } catch {
                corrupt[name] = "\(error)"
                logger.error("index '\(name)' did not load and is left untouched: \(error)")
            }
        }
    }

    var summary: [(name: String, size: Int, problem: String?)] {
        indexes.map { ($0.key, $0.value.count, nil) } + corrupt.map { ($0.key, 0, $0.value) }
    }

    func add(to name: String, ids: [String], vectors: [[Float]]) throws -> (added: Int, size: Int) {
        try Self.validate(name)
        try usable(name)
        guard let dimension = vectors.first?.count else { throw WireStatus(.invalidArgument, "nothing to add") }
        var index = indexes[name] ?? ImageIndex(dimension: dimension)
        guard vectors.allSatisfy({ $0.count == index.dimension }) else {
            throw WireStatus(.invalidArgument, "index '\(name)' holds vectors of dimension \(index.dimension), got \(Set(vectors.map(\.count)).sorted())")
        }
        let added = index.upsert(ids: ids, vectors: vectors)
        try persist(index, name)
        indexes[name] = index
        return (added, index.count)
    }

    func search(_ name: String, query: [Float], k: Int) throws -> [(id: String, score: Float)] {
        try usable(name)
        guard let index = indexes[name] else { throw unknown(name) }
        guard query.count == index.dimension else {
            throw WireStatus(.invalidArgument, "index '\(name)' holds vectors of dimension \(index.dimension), the query has \(query.count)")
        }
        return index.search(query, k: k)
    }

    /// Removes `ids`, or the whole index when `ids` is empty; returns (removed, size left).
    func delete(from name: String, ids: [String]) throws -> (deleted: Int, size: Int) {
        if ids.isEmpty, let problem = corrupt[name] {
            let aside = try moveAside(name)
            corrupt[name] = nil
            logger.warning("index '\(name)' deleted; its unreadable file (\(problem)) moved to \(aside)")
            return (0, 0)
        }
        try usable(name)
        guard var index = indexes[name] else { throw unknown(name) }
        if ids.isEmpty {
            if let path = path(name) { unlink(path) }
            indexes[name] = nil
            return (index.count, 0)
        }
        let deleted = index.remove(ids)
        try persist(index, name)
        indexes[name] = index
        return (deleted, index.count)
    }

    func dimension(of name: String) -> Int? { indexes[name]?.dimension }

    /// Index names become file names: letters, digits, '.', '_' and '-', not starting with '.'.
    static func validate(_ name: String) throws {
        do { _ = try Checked.name(name, "index name") } catch let invalid as InvalidField { throw WireStatus.from(invalid) }
    }

    private func usable(_ name: String) throws {
        if let problem = corrupt[name] {
            throw WireStatus(.dataLoss, "index '\(name)' could not be read at start (\(problem)); move the file aside or delete the index to start it over")
        }
    }

    private func unknown(_ name: String) -> WireStatus {
        WireStatus(.notFound, "no index named '\(name)'" + (indexes.isEmpty ? "" : "; indexes: \(indexes.keys.sorted().joined(separator: ", "))"))
    }

    private func path(_ name: String) -> String? {
        directory.map { ($0 as NSString).appendingPathComponent(name + IndexFile.suffix) }
    }

    private func persist(_ index: ImageIndex, _ name: String) throws {
        guard let path = path(name) else { return }
        do {
            try IndexFile.writeAtomically(IndexFile.encode(index), to: path)
        } catch let failure as POSIXFailure where [ENOSPC, EDQUOT, EFBIG].contains(failure.code) {
            // A full disk is the operator's to fix, and the call may succeed once there is room.
            throw WireStatus(.resourceExhausted, "index '\(name)' could not be saved, nothing was changed: \(failure) (the --data-dir disk is full)")
        } catch {
            throw WireStatus(.internal, "index '\(name)' could not be saved, nothing was changed: \(error)")
        }
    }

    private func moveAside(_ name: String) throws -> String {
        guard let path = path(name) else { return "(nowhere)" }
        let aside = path + ".corrupt-\(Int(Date().timeIntervalSince1970))"
        guard rename(path, aside) == 0 else { throw WireStatus(.internal, "\(POSIXFailure(operation: "rename \(path)"))") }
        return aside
    }
}
