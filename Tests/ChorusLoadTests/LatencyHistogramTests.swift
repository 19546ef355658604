import ChorusWire
import Foundation
import Testing
@testable import ChorusLoad

@Suite struct LatencyHistogramTests {
    @Test func smallValuesAreExactAndPercentilesAreNearestRank() {
        var h = LatencyHistogram()
        for v in 1...100 { h.record(microseconds: UInt64(v)) }
        #expect(h.count == 100 && h.min == 1 && h.max == 100)
        #expect(h.percentile(50) == 50 && h.percentile(90) == 90 && h.percentile(99) == 99 && h.percentile(100) == 100)
        #expect(abs(h.mean - 50.5) < 1e-9)
        #expect(abs(h.standardDeviation - 29.011491975882016) < 1e-6)
    }

    @Test func largeValuesAreKeptToWithinOnePartIn128() {
        var h = LatencyHistogram()
        let values: [UInt64] = [300, 1_000, 12_345, 999_999, 3_600_000_000, UInt64.max / 3]
        for v in values { h.record(microseconds: v) }
        for (i, v) in values.enumerated() {
            let reported = h.percentile(Double(i + 1) / Double(values.count) * 100)
            #expect(reported >= v && Double(reported - v) <= Double(v) / 128, "\(v) reported as \(reported)")
        }
    }

    @Test func bucketsCoverEveryValueInOrder() {
        var previous = -1
        for v in stride(from: UInt64(0), to: 1 << 20, by: 7) {
            let index = LatencyHistogram.index(v)
            #expect(index >= previous && LatencyHistogram.upperBound(index) >= v)
            previous = index
        }
        #expect(LatencyHistogram.index(.max) == LatencyHistogram.bucketCount - 1)
    }

    @Test func mergingIsTheSameAsRecordingTogether() {
        var a = LatencyHistogram(), b = LatencyHistogram(), both = LatencyHistogram()
        for v in stride(from: UInt64(5), to: 50_000, by: 37) {
            if v % 2 == 0 { a.record(microseconds: v) } else { b.record(microseconds: v) }
            both.record(microseconds: v)
        }
        a.add(b)
        #expect(a == both)
    }

    @Test func durationsAreRecordedInMicroseconds() {
        var h = LatencyHistogram()
        h.record(.milliseconds(12))
        h.record(.seconds(-1))
        #expect(h.max == 12_000 && h.min == 0)
    }
}

/// The runner against a caller in this process: counts, modes and errors, no network.
@Suite struct LoadRunnerTests {
    struct Caller: LoadCaller {
        /// Every `failEvery`-th call fails with RESOURCE_EXHAUSTED.
        let failEvery: Int
        func call(_ index: Int) async -> CallOutcome {
            let failure: StatusCode? = failEvery > 0 && index % failEvery == 0 ? .resourceExhausted : nil
            return CallOutcome(failure: failure, latency: .microseconds(100 + index), firstAnswer: .microseconds(10), answers: 3)
        }
    }

    @Test func aClosedLoopSendsExactlyTheRequestsAsked() async {
        let runner = LoadRunner(caller: Caller(failEvery: 0), limits: LoadLimits(requests: 50, warmup: 2))
        let result = await runner.run(.concurrency(4))
        #expect(result.sent == 50 && result.succeeded == 50 && result.failures.isEmpty && result.answers == 150)
        #expect(result.latency.count == 50 && result.latency.min >= 102 && result.firstAnswer.percentile(50) == 10)
    }

    @Test func failuresAreCountedByStatusAndKeptOutOfTheLatencies() async {
        let runner = LoadRunner(caller: Caller(failEvery: 5), limits: LoadLimits(requests: 20))
        let result = await runner.run(.concurrency(2))
        #expect(result.sent == 20 && result.failures == [.resourceExhausted: 4] && result.succeeded == 16 && result.latency.count == 16)
    }

    /// Answers only once every call of the level has been sent: a generator that waited for answers
    /// before sending more would see each call time out instead.
    struct WaitsForAllCalls: LoadCaller {
        let total: Int
        let started = Outstanding()
        func call(_ index: Int) async -> CallOutcome {
            started.take()
            let clock = ContinuousClock(), giveUp = clock.now + .seconds(20)
            while started.count < total && clock.now < giveUp { try? await Task.sleep(for: .milliseconds(2)) }
            return CallOutcome(failure: started.count < total ? .deadlineExceeded : nil, latency: .milliseconds(1), firstAnswer: nil, answers: 1)
        }
    }

    @Test func anOpenLoopSendsAtTheRateWhateverTheAnswers() async {
        let runner = LoadRunner(caller: WaitsForAllCalls(total: 30), limits: LoadLimits(requests: 30), seed: 7)
        let result = await runner.run(.rate(1000, poisson: true))
        #expect(result.sent == 30 && result.notSent == 0 && result.succeeded == 30, "\(result.failures)")
    }

    @Test func theReportsParseAndAgree() async throws {
        let runner = LoadRunner(caller: Caller(failEvery: 4), limits: LoadLimits(requests: 12))
        let levels = [await runner.run(.concurrency(1)), await runner.run(.concurrency(3))]
        let report = LoadReport(target: "in-process", method: "/test/Call", levels: levels)
        let json = try #require(try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
        let rows = try #require(json["levels"] as? [[String: Any]])
        #expect(rows.count == 2 && rows.map { $0["sent"] as? Int } == [12, 12] && rows.map { $0["concurrency"] as? Int } == [1, 3])
        #expect((rows[0]["failures"] as? [String: Int]) == ["RESOURCE_EXHAUSTED": 3])
        let csv = report.csv.split(separator: "\n")
        #expect(csv.count == 3 && csv.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 13 })
        #expect(report.table.contains("RESOURCE_EXHAUSTED 3"))
    }
}
