package parallax.engine.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressMeterTest {

    @Test
    void rateAndEtaFromTheClock() {
        AtomicLong now = new AtomicLong(0);
        ProgressMeter m = new ProgressMeter("train", 100, now::get);
        assertTrue(Double.isNaN(m.rate()));
        now.set(10_000_000_000L); // 10 s
        m.update(25, Map.of("loss", "2.50"));
        assertEquals(2.5, m.rate(), 1e-9);
        assertEquals(30.0, m.etaSeconds(), 1e-9);
        String line = m.line(10);
        assertTrue(line.startsWith("train [###.......] 25/100  25%"), line);
        assertTrue(line.contains("ETA 0:30"), line);
        assertTrue(line.endsWith("loss=2.50"), line);
    }

    @Test
    void doneIsClampedToTotal() {
        ProgressMeter m = new ProgressMeter("x", 4, () -> 1L);
        m.update(9, Map.of());
        assertEquals(4, m.done());
        assertEquals(1.0, m.fraction());
        assertEquals("1:01:01", ProgressMeter.clock(3661));
    }
}
