package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class CliTest {

    @Test
    void exitCodesSayWhatHappened() {
        assertEquals(0, Cli.run(new String[] {"lsmagic"}));
        assertEquals(2, Cli.run(new String[] {"lsmagic", "--nope"}));
        assertEquals(2, Cli.run(new String[] {"no-such-magic"}));
        assertEquals(2, Cli.run(new String[] {"--bogus"}));
        assertEquals(0, Cli.run(new String[] {"--help"}));
    }

    @Test
    void wordsWithBlanksSurviveRequoting() throws Exception {
        String line = String.join(" ", Cli.quote("a b"), Cli.quote("it's"), Cli.quote("plain"));
        assertEquals(java.util.List.of("a b", "it's", "plain"), ArgLine.split(line));
    }
}
