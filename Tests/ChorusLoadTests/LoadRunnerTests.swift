import Foundation
import Testing
@testable import ChorusLoad

/// The runner against a caller in this process: counts, modes, windows and errors, no network.
@Suite struct LoadRunnerTests {
    struct Caller: LoadCaller {
        /// Every `failEvery`-th call fails with RESOURCE_EXHAUSTED.
        let failEvery: Int
        func call(_ index: Int) async -> CallOutcome {
            let failure: String? = failEvery > 0 && index % failEvery == 0 ? "RESOURCE_EXHAUSTED" : nil
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
        #expect(result.sent == 20 && result.failures == ["RESOURCE_EXHAUSTED": 4] && result.succeeded == 16 && result.latency.count == 16)
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
            return CallOutcome(failure: started.count < total ? "DEADLINE_EXCEEDED" : nil, latency: .milliseconds(1))
        }
    }

    @Test func anOpenLoopSendsAtTheRateWhateverTheAnswers() async {
        let runner = LoadRunner(caller: WaitsForAllCalls(total: 30), limits: LoadLimits(requests: 30), seed: 7)
        let result = await runner.run(.rate(1000, .poisson))
        #expect(result.sent == 30 && result.notSent == 0 && result.succeeded == 30, "\(result.failures)")
    }

    /// Takes 1 ms a call, the same every time: its windows agree.
    struct Steady: LoadCaller {
        func call(_ index: Int) async -> CallOutcome {
            try? await Task.sleep(for: .milliseconds(1))
            return CallOutcome(failure: nil, latency: .milliseconds(1))
        }
    }

    @Test func withoutACountOrATimeALevelRunsUntilThreeWindowsAgree() async {
        let windows = MeasurementWindows(length: .milliseconds(150), percent: 50, maxTrials: 20)
        let runner = LoadRunner(caller: Steady(), limits: LoadLimits(windows: windows))
        let result = await runner.run(.concurrency(2))
        #expect(result.stable == true && (3...20).contains(result.windows.count), "\(result.windows)")
        // The three stable windows are reported together, not the whole run.
        let lastThree = result.windows.suffix(3).map(\.completed).reduce(0, +)
        #expect(result.sent == lastThree && result.latency.count == lastThree && result.latency.percentile(50) == 1000)
    }

    @Test func theStabilityRuleComparesTheLastThreeWindows() {
        let rule = MeasurementWindows(percent: 10)
        func window(_ throughput: Double, _ latency: Double) -> WindowSummary {
            WindowSummary(seconds: 1, completed: Int(throughput), throughput: throughput, latencyMicroseconds: latency)
        }
        #expect(rule.stable([window(100, 1000), window(100, 1000)]) == nil)
        #expect(rule.stable([window(10, 9000), window(100, 1000), window(105, 1040), window(96, 980)]) == true)
        #expect(rule.stable([window(100, 1000), window(130, 1000), window(100, 1000)]) == false)
        #expect(rule.stable([window(100, 1000), window(100, 1300), window(100, 1000)]) == false)
        #expect(rule.stable([window(100, 1000), window(0, 0), window(100, 1000)]) == false)
    }

    /// A chat of `tokens` tokens: the first after 20 ms, then one every 5 ms.
    struct Chat: LoadCaller {
        let tokens: Int
        func call(_ index: Int) async -> CallOutcome {
            var outcome = CallOutcome(failure: nil, latency: .milliseconds(20 + 5 * (tokens - 1)), firstAnswer: .milliseconds(20), answers: tokens + 1)
            outcome.tokens = tokens
            outcome.tokenGaps = Array(repeating: .milliseconds(5), count: tokens - 1)
            return outcome
        }
    }

    @Test func chatFiguresFollowVLLMsDefinitions() async throws {
        let runner = LoadRunner(caller: Chat(tokens: 11), limits: LoadLimits(requests: 10), objectives: try ServiceLevelObjectives(parsing: "ttft=25ms,tpot=6ms"))
        let result = await runner.run(.concurrency(1))
        #expect(result.tokens == 110 && result.firstAnswer.percentile(50) == 20_000)
        #expect(result.timePerOutputToken.percentile(50) == 5_000 && result.interTokenLatency.count == 100 && result.interTokenLatency.percentile(99) == 5_000)
        #expect(result.metObjectives == 10)
        let strict = LoadRunner(caller: Chat(tokens: 11), limits: LoadLimits(requests: 10), objectives: try ServiceLevelObjectives(parsing: "tpot=4ms"))
        #expect(await strict.run(.concurrency(1)).metObjectives == 0)
    }

    /// Transcribes 10 s of audio in 2 s, or synthesizes 4 s in 1 s: real-time factors 0.2 and 0.25.
    struct Speech: LoadCaller {
        let input: Bool
        func call(_ index: Int) async -> CallOutcome {
            var outcome = CallOutcome(failure: nil, latency: .seconds(input ? 2 : 1))
            if input { outcome.audioInSeconds = 10 } else { outcome.audioOutSeconds = 4 }
            return outcome
        }
    }

    @Test func theRealTimeFactorIsProcessingOverAudio() async {
        let transcribe = await LoadRunner(caller: Speech(input: true), limits: LoadLimits(requests: 4)).run(.concurrency(1))
        #expect(abs((transcribe.overallRealTimeFactor ?? 0) - 0.2) < 1e-9 && transcribe.realTimeFactor.percentile(50) == 200_000 && transcribe.audioInSeconds == 40)
        let synthesize = await LoadRunner(caller: Speech(input: false), limits: LoadLimits(requests: 4)).run(.concurrency(1))
        #expect(abs((synthesize.overallRealTimeFactor ?? 0) - 0.25) < 1e-9 && synthesize.audioOutSeconds == 16)
    }

    @Test func objectivesParseAndRefuseNonsense() throws {
        let goals = try ServiceLevelObjectives(parsing: "ttft=200ms,e2e=2s,tpot=50,rtf=0.5,step=300us")
        #expect(goals.firstAnswer == .milliseconds(200) && goals.endToEnd == .seconds(2) && goals.timePerOutputToken == .milliseconds(50))
        #expect(goals.realTimeFactor == 0.5 && goals.perStep == .microseconds(300))
        for bad in ["", "ttft", "ttft=-1ms", "speed=3", "rtf=fast", "e2e=nan", "e2e=1e300s"] {
            #expect(throws: ServiceLevelObjectives.ParseError.self, "\(bad)") { try ServiceLevelObjectives(parsing: bad) }
        }
    }
}

@Suite struct InputOrderTests {
    @Test func randomOrderIsSeededAndReachesEveryRequest() {
        let order = InputOrder.random(seed: 5)
        let picks = (0..<400).map { order.pick($0, of: 4) }
        #expect(picks == (0..<400).map { InputOrder.random(seed: 5).pick($0, of: 4) } && Set(picks) == [0, 1, 2, 3])
        #expect(picks != (0..<400).map { InputOrder.random(seed: 6).pick($0, of: 4) })
        #expect((0..<8).map { InputOrder.cycle.pick($0, of: 3) } == [0, 1, 2, 0, 1, 2, 0, 1])
    }
}

@Suite struct ArrivalGapsTests {
    func moments(_ arrivals: Arrivals, rate: Double, count: Int = 40_000) -> (mean: Double, cv: Double) {
        var gaps = ArrivalGaps(rate: rate, arrivals: arrivals, seed: 3)
        let values = (0..<count).map { _ in gaps.next() }
        let mean = values.reduce(0, +) / Double(count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count - 1)
        return (mean, variance.squareRoot() / mean)
    }

    /// Gamma gaps of shape k have mean 1/rate and coefficient of variation 1/√k.
    @Test func gammaGapsHaveTheRateAndTheBurstinessAsked() {
        for burstiness in [0.25, 1, 4] {
            let (mean, cv) = moments(.gamma(burstiness: burstiness), rate: 20)
            #expect(abs(mean - 0.05) < 0.05 * 0.03, "burstiness \(burstiness): mean \(mean)")
            #expect(abs(cv - 1 / burstiness.squareRoot()) < 0.05 / burstiness.squareRoot() + 0.02, "burstiness \(burstiness): cv \(cv)")
        }
        let constant = moments(.constant, rate: 8)
        #expect(constant.mean == 0.125 && constant.cv == 0)
    }

    @Test func theSameSeedGivesTheSameArrivals() {
        var a = ArrivalGaps(rate: 5, arrivals: .poisson, seed: 11), b = ArrivalGaps(rate: 5, arrivals: .poisson, seed: 11)
        #expect((0..<100).map { _ in a.next() } == (0..<100).map { _ in b.next() })
    }
}
