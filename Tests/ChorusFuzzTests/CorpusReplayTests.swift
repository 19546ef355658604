import ChorusFuzzTargets
import Foundation
import Testing

/// Every fuzz target over its seed corpus (Fuzz/corpus/TARGET) and every input a fuzzing run ever
/// crashed on (Fuzz/regressions/TARGET): a plain build must get through all of them. A crash here is
/// the test failing, loudly: the process dies with the input's target named in the log.
@Suite struct CorpusReplayTests {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz")
    }()

    static func inputs(_ folder: String, _ target: String) -> [URL] {
        let directory = root.appendingPathComponent(folder).appendingPathComponent(target)
        return ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []).sorted { $0.path < $1.path }
    }

    @Test(arguments: FuzzTargets.all.keys.sorted())
    func seedsAndRegressionsRunClean(target name: String) throws {
        let target = try #require(FuzzTargets.all[name])
        let seeds = Self.inputs("corpus", name)
        #expect(!seeds.isEmpty, "Fuzz/corpus/\(name) has no seeds: run scripts/fuzz-seeds")
        for file in seeds + Self.inputs("regressions", name) {
            target([UInt8](try Data(contentsOf: file)))
        }
    }
}
