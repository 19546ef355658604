import CKernels
import ChorusTensor
import Testing

/// OpenBLAS 0.3.21 falls back to its generic Prescott kernel on CPUs newer than itself; the chorus binary
/// then restarts with the kernel the vector unit runs, unless the environment chose one.
@Suite struct BLASKernelChoiceTests {
    @Test func aGenericKernelIsReplacedByTheOneTheVectorUnitRuns() {
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], vectorLevel: 3) == "Cooperlake")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], vectorLevel: 2) == "SkylakeX")
        #expect(BLASInfo.replacementKernel(current: "Nehalem", environment: [:], vectorLevel: 1) == "Haswell")
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: [:], vectorLevel: 0) == nil)  // nothing better runs
    }

    @Test func aRecognisedKernelOrAChoiceInTheEnvironmentIsKept() {
        #expect(BLASInfo.replacementKernel(current: "Cooperlake", environment: [:], vectorLevel: 3) == nil)
        #expect(BLASInfo.replacementKernel(current: "Zen", environment: [:], vectorLevel: 1) == nil)
        // A value the environment sets may be there to avoid a kernel that miscomputes: never overridden.
        #expect(BLASInfo.replacementKernel(current: "Prescott", environment: ["OPENBLAS_CORETYPE": "Prescott"], vectorLevel: 3) == nil)
        #expect(BLASInfo.replacementKernel(current: "Haswell", environment: ["OPENBLAS_CORETYPE": "Haswell"], vectorLevel: 3) == nil)
    }

    @Test func theVectorLevelIsOneOfTheFourAndMatchesTheKernelsThatRun() {
        let level = chorus_cpu_vector_level()
        #expect((0...3).contains(level))
        // The AVX-512 kernels run exactly where the level says AVX-512.
        #expect((chorus_vector_math_avx512() != 0) == (level >= 2))
        #expect((chorus_gemm_columns_best() == 32) == (level >= 2))
    }
}
