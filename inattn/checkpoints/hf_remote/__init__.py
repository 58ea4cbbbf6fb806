"""The Hugging Face remote code of an exported InAttention (or any non-GPT-2) model.

inattn-export copies these files into the model folder beside `inattn_model.py` (the source of
`inattn/model.py`, its `inattn.*` imports made relative) and `inattn_errors.py`, so that
`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` needs transformers and
torch only. `modeling_inattn` imports `.inattn_model`, which exists in the folder, not here:
import it from an exported folder, not from this package.
"""

FILES = ("configuration_inattn.py", "modeling_inattn.py")
