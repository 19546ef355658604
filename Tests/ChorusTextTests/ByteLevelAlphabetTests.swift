import Testing
@testable import ChorusText

@Suite struct ByteLevelAlphabetTests {
    @Test func everyByteHasItsOwnPrintableScalar() {
        let scalars = ByteLevelAlphabet.scalarForByte
        #expect(Set(scalars).count == 256)
        #expect(scalars[Int(UInt8(ascii: " "))] == "Ġ")
        #expect(scalars[Int(UInt8(ascii: "\n"))] == "Ċ")
        #expect(scalars[Int(UInt8(ascii: "A"))] == "A")
    }

    @Test func encodeThenBytesRoundTrips() throws {
        let text = "héllo 👋\n\u{0}"
        let encoded = ByteLevelAlphabet.encode(text)
        #expect(try #require(ByteLevelAlphabet.bytes(of: encoded)) == Array(text.utf8))
    }
}
