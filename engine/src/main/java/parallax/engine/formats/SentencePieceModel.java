package parallax.engine.formats;

import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import parallax.engine.UserError;
import parallax.engine.formats.spm.SentencePieceProto;

/**
 * Reads a SentencePiece {@code tokenizer.model} (a protobuf ModelProto; our subset of its
 * messages is src/main/protobuf/sentencepiece_subset.proto) of model type BPE, the kind
 * Llama 1/2 and Mistral ship: pieces, scores and piece types go to GGUF as they are (llama.cpp
 * numbers its token types as SentencePiece numbers its piece types), the BOS/EOS/UNK/PAD ids
 * from the trainer spec, the leading ▁ from add_dummy_prefix. llama.cpp joins the pieces as
 * SentencePiece's BPE encoder does, by score. A Unigram model (T5's kind) is refused in one line.
 */
final class SentencePieceModel {

    /** The largest tokenizer.model read; real ones are well under 10 MB. */
    static final long MAX_BYTES = 64L << 20;

    private SentencePieceModel() {}

    static Tokenizer read(Path dir) {
        Path file = dir.resolve("tokenizer.model");
        String name = file.getFileName().toString();
        SentencePieceProto.Model m;
        try {
            if (Files.size(file) > MAX_BYTES) throw new UserError(name + ": " + Files.size(file) + " bytes is more than a SentencePiece model holds (limit " + MAX_BYTES + ")");
            m = SentencePieceProto.Model.parseFrom(Files.readAllBytes(file));
        } catch (InvalidProtocolBufferException e) {
            throw new UserError(name + ": not a SentencePiece model (protobuf: " + Safetensors.firstLine(e.getMessage()) + ")");
        } catch (IOException e) {
            throw new UserError(file + ": cannot read: " + e.getMessage());
        }
        if (m.getPiecesCount() == 0) throw new UserError(name + ": no pieces (not a SentencePiece model?)");
        SentencePieceProto.TrainerSpec spec = m.getTrainerSpec();
        if (spec.getModelType() != SentencePieceProto.TrainerSpec.ModelType.BPE)
            throw new UserError(name + ": model type " + spec.getModelType() + " is not supported (BPE only: the Llama and Mistral kind)");
        if (spec.getTreatWhitespaceAsSuffix()) throw new UserError(name + ": treat_whitespace_as_suffix is not supported");
        int n = m.getPiecesCount();
        List<String> tokens = new ArrayList<>(n);
        float[] scores = new float[n];
        Tokenizer.TokenType[] types = new Tokenizer.TokenType[n];
        for (int i = 0; i < n; i++) {
            SentencePieceProto.Model.Piece p = m.getPieces(i);
            if (p.getPiece().isEmpty()) throw new UserError(name + ": piece " + i + " is empty");
            tokens.add(p.getPiece());
            scores[i] = p.getScore();
            types[i] = Tokenizer.TokenType.of(p.getType().getNumber());
        }
        Tokenizer.Specials sp = new Tokenizer.Specials(id(spec.getBosId(), n), id(spec.getEosId(), n), id(spec.getUnkId(), n),
                id(spec.getPadId(), n), null, null, null);
        boolean prefix = !m.hasNormalizerSpec() || m.getNormalizerSpec().getAddDummyPrefix();
        return new Tokenizer(Tokenizer.Kind.SENTENCEPIECE, name, tokens, scores, types, List.of(), sp, prefix, null, null, false, false);
    }

    private static int id(int id, int n) {
        return id >= 0 && id < n ? id : -1;
    }
}
