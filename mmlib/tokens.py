"""The special tokens and their ids, fixed at 0-3: what the tokenizer writes, the model starts and
stops a caption with, and the losses leave out (padding). One place, so they cannot disagree."""

PAD, START, END, UNK = "<PAD>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(len(SPECIAL_TOKENS))
