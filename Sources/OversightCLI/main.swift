print("oversight")
