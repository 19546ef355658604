/// Which of the prepared requests the i-th call sends: each in turn, or drawn at random (seeded, so a
/// run repeats; calls are independent draws, so some requests come up more often than others).
public enum InputOrder: Sendable, Equatable {
    case cycle
    case random(seed: UInt64)

    public func pick(_ index: Int, of count: Int) -> Int {
        switch self {
        case .cycle:
            return index % count
        case .random(let seed):
            var mix = SplitMix(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03))
            return Int(mix.next() % UInt64(count))  // checked: below count
        }
    }
}
