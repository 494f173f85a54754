package parallax.magics;

/** A magic that also takes the body of the cell ({@code %%name args} then the body). */
public interface CellMagic {

    /** Receives the cell body (everything after the first line) before the command runs. */
    void cellBody(String body);
}
