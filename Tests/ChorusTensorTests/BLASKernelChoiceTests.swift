import CKernels
import ChorusTensor
import Testing

/// OpenBLAS 0.3.21 falls back to its generic Prescott kernel on CPUs newer than itself; the chorus binary
/// then restarts with the kernel the vector unit runs, unless the environment chose one.
@Suite struct BLASKernelChoiceTests {
    @Test func aGenericKernelIsReplacedByTheOneTheVectorUnitRuns() {
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], level: .avx512BF16, detected: .avx512BF16) == "Cooperlake")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], level: .amx, detected: .amx) == "Cooperlake")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], level: .avx512VNNI, detected: .avx512VNNI) == "SkylakeX")
        #expect(BLASInfo.replacementKernel(current: "Nehalem", environment: [:], level: .avx2, detected: .avx2) == "Haswell")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], level: .plain, detected: .plain) == nil)  // nothing better runs
    }

    @Test func aRecognisedKernelOrAChoiceInTheEnvironmentIsKept() {
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: [:], level: .avx512BF16, detected: .avx512BF16) == nil)
        #expect(BLASInfo.replacementKernel(current: "Zen", environment: [:], level: .avx2, detected: .avx2) == nil)
        #expect(BLASInfo.replacementKernel(current: "SomethingNew", environment: [:], level: .avx2, detected: .amx) == nil)
        // A value the environment sets may be there to avoid a kernel that miscomputes: never overridden.
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: ["OPENBLAS_CORETYPE": "Prescott"], level: .avx512BF16, detected: .avx512BF16) == nil)
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: ["OPENBLAS_CORETYPE": "Cooperlake"], level: .avx2, detected: .avx512BF16) == nil)
    }

    @Test func aLowerLevelHoldsOpenBLASToAKernelOfThatLevel() {
        // CHORUS_CPU=avx2 on a Zen 4: the AVX2 path is measured with OpenBLAS's AVX2 kernel too.
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: [:], level: .avx2, detected: .avx512BF16) == "Haswell")
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: [:], level: .plain, detected: .avx512BF16) == "Haswell")
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: [:], level: .avx512VNNI, detected: .avx512BF16) == "SkylakeX")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], level: .avx512, detected: .amx) == "SkylakeX")
        #expect(BLASInfo.replacementKernel(current: "SkylakeX", environment: [:], level: .avx512BF16, detected: .avx512BF16) == nil)  // never raised
        #expect(BLASInfo.replacementKernel(current: "Haswell", environment: [:], level: .avx2, detected: .avx512BF16) == nil)
    }
}
