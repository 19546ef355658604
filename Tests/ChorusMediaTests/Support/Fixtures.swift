import Foundation

/// Test data lives in Tests/ChorusMediaTests/Fixtures, found from this file's location so that it works
/// from any working directory.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // ChorusMediaTests
        .appendingPathComponent("Fixtures")

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(path)))
    }

    static func data(_ path: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(path))
    }

    static func tensors(_ path: String) throws -> SafeTensors {
        try SafeTensors(contentsOf: root.appendingPathComponent(path))
    }
}

/// Largest |a - b| and where it is, for messages that say where a comparison failed.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> (value: Float, index: Int) {
    precondition(a.count == b.count, "comparing \(a.count) values with \(b.count)")
    var worst: (value: Float, index: Int) = (0, 0)
    for i in a.indices {
        let difference = abs(a[i] - b[i])
        if difference > worst.value || difference.isNaN { worst = (difference, i) }
    }
    return worst
}
