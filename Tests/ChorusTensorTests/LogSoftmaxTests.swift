import ChorusTensor
import Foundation
import Testing

@Suite struct LogSoftmaxTests {
    @Test func matchesADoubleReferenceOverAWhisperSizedRow() {
        var random = SplitMix64(seed: 7)
        var row = random.normals(51_864).map { $0 * 4 }
        for i in stride(from: 3, to: row.count, by: 97) { row[i] = -.infinity }  // suppressed tokens
        let top = Double(row.max()!)
        let logTotal = log(row.reduce(0.0) { $0 + exp(Double($1) - top) })
        let result = logSoftmaxRow(row)
        #expect(result.count == row.count)
        var worst = 0.0
        for (x, y) in zip(row, result) {
            if x == -.infinity { #expect(y == -.infinity); continue }
            worst = max(worst, abs(Double(y) - (Double(x) - top - logTotal)))
        }
        #expect(worst < 2e-5, "largest error \(worst)")
        // The probabilities sum to one.
        #expect(abs(result.reduce(0.0) { $0 + exp(Double($1)) } - 1) < 1e-5)
    }

    @Test func rowsWithoutAFiniteEntryComeBackUnchanged() {
        #expect(logSoftmaxRow([]) == [])
        #expect(logSoftmaxRow([-.infinity, -.infinity]) == [-.infinity, -.infinity])
        #expect(logSoftmaxRow([0, 0]).allSatisfy { abs($0 + Float(log(2.0))) < 1e-6 })
    }
}
