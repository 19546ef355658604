/// The golden fixtures' rule (shared/fixtures/README.md): |actual − expected| ≤ atol + rtol·|expected| for
/// every value. Nil when it holds; otherwise what the failing test should say, with the worst value.
public func fixtureMismatch(_ name: String, _ actual: [Float], _ expected: [Float], atol: Float, rtol: Float = 1e-4) -> String? {
    guard actual.count == expected.count else { return "\(name): \(actual.count) values, expected \(expected.count)" }
    var bad = 0, worst: Float = 0, at = 0
    for i in actual.indices {
        let difference = abs(actual[i] - expected[i])
        // NaN fails every comparison, so it is counted explicitly.
        if difference.isNaN || difference > atol + rtol * abs(expected[i]) { bad += 1 }
        if difference.isNaN || difference > worst { (worst, at) = (difference, i) }
    }
    return bad == 0 ? nil : "\(name): \(bad) of \(actual.count) values off, max |Δ| \(worst) at \(at)"
}
